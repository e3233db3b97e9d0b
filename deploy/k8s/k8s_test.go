package k8s

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// manifests is every object of every *.yaml file but the kustomization,
// decoded strictly (an unknown or misspelt field is an error).
type manifests struct {
	services     map[string]*corev1.Service
	accounts     map[string]*corev1.ServiceAccount
	statefulSets map[string]*appsv1.StatefulSet
	deployments  map[string]*appsv1.Deployment
	jobs         map[string]*batchv1.Job
	roles        map[string]*rbacv1.Role
	bindings     map[string]*rbacv1.RoleBinding
	pdbs         map[string]*policyv1.PodDisruptionBudget
}

// kustomization is the part of kustomization.yaml we use (strict too).
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{
		services: map[string]*corev1.Service{}, accounts: map[string]*corev1.ServiceAccount{},
		statefulSets: map[string]*appsv1.StatefulSet{}, deployments: map[string]*appsv1.Deployment{},
		jobs: map[string]*batchv1.Job{}, roles: map[string]*rbacv1.Role{},
		bindings: map[string]*rbacv1.RoleBinding{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
	}
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var kust kustomization
	var listed []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if f == "kustomization.yaml" {
			if err := yaml.UnmarshalStrict(data, &kust); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			continue
		}
		listed = append(listed, f)
		for i, doc := range docSep.Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			if err := m.add([]byte(doc)); err != nil {
				t.Fatalf("%s, document %d: %v", f, i+1, err)
			}
		}
	}
	slices.Sort(listed)
	res := slices.Clone(kust.Resources)
	slices.Sort(res)
	if kust.Kind != "Kustomization" || !slices.Equal(res, listed) {
		t.Fatalf("kustomization.yaml lists %v, the directory holds %v", kust.Resources, listed)
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// add decodes one document into the type its apiVersion and kind name.
func (m *manifests) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var name string
	decode := func(obj interface{ GetName() string }) error {
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
		}
		name = obj.GetName()
		if name == "" {
			return fmt.Errorf("%s without a name", tm.Kind)
		}
		return nil
	}
	var err error
	switch gvk := tm.APIVersion + " " + tm.Kind; gvk {
	case "v1 Service":
		o := &corev1.Service{}
		err = decode(o)
		m.services[name] = o
	case "v1 ServiceAccount":
		o := &corev1.ServiceAccount{}
		err = decode(o)
		m.accounts[name] = o
	case "apps/v1 StatefulSet":
		o := &appsv1.StatefulSet{}
		err = decode(o)
		m.statefulSets[name] = o
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		err = decode(o)
		m.deployments[name] = o
	case "batch/v1 Job":
		o := &batchv1.Job{}
		err = decode(o)
		m.jobs[name] = o
	case "rbac.authorization.k8s.io/v1 Role":
		o := &rbacv1.Role{}
		err = decode(o)
		m.roles[name] = o
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		o := &rbacv1.RoleBinding{}
		err = decode(o)
		m.bindings[name] = o
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		err = decode(o)
		m.pdbs[name] = o
	default:
		return fmt.Errorf("unexpected kind %q", gvk)
	}
	return err
}

// workload is a pod template with the selector that claims its pods.
type workload struct {
	kind, name string
	selector   *metav1.LabelSelector
	template   *corev1.PodTemplateSpec
}

func (m *manifests) workloads() []workload {
	var w []workload
	for n, s := range m.statefulSets {
		w = append(w, workload{"StatefulSet", n, s.Spec.Selector, &s.Spec.Template})
	}
	for n, d := range m.deployments {
		w = append(w, workload{"Deployment", n, d.Spec.Selector, &d.Spec.Template})
	}
	for n, j := range m.jobs {
		w = append(w, workload{"Job", n, j.Spec.Selector, &j.Spec.Template})
	}
	return w
}

// podsSelectedBy is the workloads whose pods carry every label of sel.
func (m *manifests) podsSelectedBy(sel map[string]string) []workload {
	var out []workload
	for _, w := range m.workloads() {
		if len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(w.template.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

// hasPort reports whether a container of the pod declares port p (a name
// or a number).
func hasPort(pod *corev1.PodSpec, p intstr.IntOrString) bool {
	for _, c := range pod.Containers {
		for _, cp := range c.Ports {
			if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
				return true
			}
		}
	}
	return false
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := load(t)
	for _, want := range []string{"shoal-manager", "shoal-node"} {
		if m.statefulSets[want] == nil {
			t.Errorf("no StatefulSet %s", want)
		}
	}
	if m.deployments["shoal-proxy"] == nil || m.jobs["shoal-init"] == nil {
		t.Errorf("missing the proxy Deployment or the init Job")
	}
	// UnmarshalStrict must reject what we rely on it to reject.
	bad := "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: x\nspec:\n  replica: 3\n"
	if err := (&manifests{statefulSets: map[string]*appsv1.StatefulSet{}}).add([]byte(bad)); err == nil {
		t.Fatal("a misspelt field decoded without error")
	}
}

func TestSelectorsMatchPodLabels(t *testing.T) {
	m := load(t)
	for _, w := range m.workloads() {
		if w.kind == "Job" {
			continue // the Job controller generates its selector
		}
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || sel.Empty() {
			t.Errorf("%s %s: selector %v: %v", w.kind, w.name, w.selector, err)
			continue
		}
		if !sel.Matches(labels.Set(w.template.Labels)) {
			t.Errorf("%s %s: selector %v does not match its pod labels %v", w.kind, w.name, w.selector, w.template.Labels)
		}
		// No other workload's pods may be claimed by it.
		for _, o := range m.workloads() {
			if o.name != w.name && sel.Matches(labels.Set(o.template.Labels)) {
				t.Errorf("%s %s also selects the pods of %s %s", w.kind, w.name, o.kind, o.name)
			}
		}
	}
	for n, p := range m.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || len(m.podsSelectedBy(p.Spec.Selector.MatchLabels)) != 1 || sel.Empty() {
			t.Errorf("PodDisruptionBudget %s selects %d workloads, want 1 (%v)", n, len(m.podsSelectedBy(p.Spec.Selector.MatchLabels)), err)
		}
	}
}

func TestServicesTargetDeclaredPorts(t *testing.T) {
	m := load(t)
	for n, s := range m.services {
		ws := m.podsSelectedBy(s.Spec.Selector)
		if len(ws) != 1 {
			t.Errorf("Service %s selects %d workloads, want 1", n, len(ws))
			continue
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			if !hasPort(&ws[0].template.Spec, target) {
				t.Errorf("Service %s port %s targets %s, not a port of %s %s", n, p.Name, target.String(), ws[0].kind, ws[0].name)
			}
		}
	}
}

func TestStatefulSetsHaveHeadlessServices(t *testing.T) {
	m := load(t)
	for n, s := range m.statefulSets {
		svc := m.services[s.Spec.ServiceName]
		if svc == nil {
			t.Errorf("StatefulSet %s: serviceName %q is not a Service", n, s.Spec.ServiceName)
			continue
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("StatefulSet %s: Service %s is not headless", n, svc.Name)
		}
		if ws := m.podsSelectedBy(svc.Spec.Selector); len(ws) != 1 || ws[0].name != n {
			t.Errorf("StatefulSet %s: Service %s does not select its pods", n, svc.Name)
		}
		// Every mount is a volume claim template (state survives the pod).
		claims := map[string]bool{}
		for _, c := range s.Spec.VolumeClaimTemplates {
			claims[c.Name] = true
		}
		for _, c := range s.Spec.Template.Spec.Containers {
			if len(c.VolumeMounts) == 0 {
				t.Errorf("StatefulSet %s container %s keeps no state on a volume", n, c.Name)
			}
			for _, vm := range c.VolumeMounts {
				if !claims[vm.Name] {
					t.Errorf("StatefulSet %s mounts %s, not a volume claim template", n, vm.Name)
				}
			}
		}
	}
}

func TestProbes(t *testing.T) {
	m := load(t)
	for _, w := range m.workloads() {
		if w.kind == "Job" {
			continue
		}
		for _, c := range w.template.Spec.Containers {
			for _, p := range []struct {
				what  string
				probe *corev1.Probe
				path  string
			}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("%s %s container %s: no HTTP %s probe", w.kind, w.name, c.Name, p.what)
					continue
				}
				if p.probe.HTTPGet.Path != p.path {
					t.Errorf("%s %s container %s: %s probe on %s, want %s", w.kind, w.name, c.Name, p.what, p.probe.HTTPGet.Path, p.path)
				}
				if !hasPort(&w.template.Spec, p.probe.HTTPGet.Port) {
					t.Errorf("%s %s container %s: %s probe port %s is not declared", w.kind, w.name, c.Name, p.what, p.probe.HTTPGet.Port.String())
				}
			}
		}
	}
}

// argValue is the value of flag name in args (--name=V or --name V).
func argValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// managerAddr checks that addr is host:port of a manager pod by its
// stable DNS name (<statefulset>-<ordinal>.<service>) on the manager's
// HTTP port, and returns the ordinal.
func (m *manifests) managerAddr(t *testing.T, where, addr string) int {
	t.Helper()
	sts := m.statefulSets["shoal-manager"]
	re := regexp.MustCompile(`^` + sts.Name + `-(\d+)\.` + sts.Spec.ServiceName + `:(\d+)$`)
	g := re.FindStringSubmatch(addr)
	if g == nil {
		t.Errorf("%s: %q is not <%s-N>.%s:PORT", where, addr, sts.Name, sts.Spec.ServiceName)
		return -1
	}
	ord, _ := strconv.Atoi(g[1])
	port, _ := strconv.Atoi(g[2])
	if ord >= int(*sts.Spec.Replicas) {
		t.Errorf("%s: %s names ordinal %d of %d managers", where, addr, ord, *sts.Spec.Replicas)
	}
	if !hasPort(&sts.Spec.Template.Spec, intstr.FromInt(port)) || !serviceExposes(m.services[sts.Spec.ServiceName], port) {
		t.Errorf("%s: %s: port %d is not a manager port of its Service", where, addr, port)
	}
	return ord
}

func serviceExposes(s *corev1.Service, port int) bool {
	for _, p := range s.Spec.Ports {
		if int(p.Port) == port {
			return true
		}
	}
	return false
}

func TestArgsReferToDeclaredThings(t *testing.T) {
	m := load(t)
	mgr := m.statefulSets["shoal-manager"]
	for _, w := range m.workloads() {
		for _, c := range w.template.Spec.Containers {
			where := w.kind + " " + w.name
			// $(VAR) in args is expanded by the kubelet only for declared env.
			env := map[string]bool{}
			for _, e := range c.Env {
				env[e.Name] = true
			}
			for _, a := range c.Args {
				for _, g := range regexp.MustCompile(`\$\(([A-Z_]+)\)`).FindAllStringSubmatch(a, -1) {
					if !env[g[1]] {
						t.Errorf("%s: arg %q uses $(%s), not in env", where, a, g[1])
					}
				}
			}
			// Every --manager names all managers by their stable names.
			if v, ok := argValue(c.Args, "manager"); ok {
				seen := map[int]bool{}
				for _, a := range strings.Split(v, ",") {
					seen[m.managerAddr(t, where, a)] = true
				}
				if len(seen) != int(*mgr.Spec.Replicas) {
					t.Errorf("%s: --manager %s does not name all %d managers", where, v, *mgr.Spec.Replicas)
				}
			}
			if v, ok := argValue(c.Args, "join"); ok {
				m.managerAddr(t, where, v)
			}
		}
	}
	// Manager 0 bootstraps, the others join it.
	args := mgr.Spec.Template.Spec.Containers[0].Args
	if v, _ := argValue(args, "bootstrap-id"); v != mgr.Name+"-0" {
		t.Errorf("manager --bootstrap-id %q, want %s-0", v, mgr.Name)
	}
	if v, _ := argValue(args, "join"); m.managerAddr(t, "manager --join", v) != 0 {
		t.Errorf("managers join %q, want manager 0", v)
	}
	if v, _ := argValue(args, "id"); v != "$(POD_NAME)" {
		t.Errorf("manager --id %q, want $(POD_NAME) (stable across restarts)", v)
	}
	for _, f := range []string{"http-advertise", "raft-advertise"} {
		v, _ := argValue(args, f)
		if !strings.HasPrefix(v, "$(POD_NAME)."+mgr.Spec.ServiceName+":") {
			t.Errorf("manager --%s %q, want its stable DNS name", f, v)
		}
	}
	// The init Job waits for exactly the nodes the StatefulSet runs.
	nodes := m.statefulSets["shoal-node"]
	initArgs := m.jobs["shoal-init"].Spec.Template.Spec.Containers[0].Args
	if v, _ := argValue(initArgs, "nodes"); v != strconv.Itoa(int(*nodes.Spec.Replicas)) || !slices.Contains(initArgs, "--if-new") {
		t.Errorf("init Job args %v: want create --nodes %d --if-new", initArgs, *nodes.Spec.Replicas)
	}
	// Storage nodes announce their pod IP.
	na := nodes.Spec.Template.Spec.Containers[0]
	if v, _ := argValue(na.Args, "cluster-announce-ip"); v != "$(POD_IP)" {
		t.Errorf("node --cluster-announce-ip %q, want $(POD_IP)", v)
	}
	for _, e := range na.Env {
		if e.Name == "POD_IP" && (e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "status.podIP") {
			t.Errorf("node env POD_IP is not the downward API's status.podIP")
		}
	}
}

// TestProvisionerRBAC: the manager's account may read and scale the
// storage StatefulSet, and nothing else.
func TestProvisionerRBAC(t *testing.T) {
	m := load(t)
	mgr := m.statefulSets["shoal-manager"]
	nodes := m.statefulSets["shoal-node"]
	sa := mgr.Spec.Template.Spec.ServiceAccountName
	if m.accounts[sa] == nil {
		t.Fatalf("manager ServiceAccount %q is not declared", sa)
	}
	args := mgr.Spec.Template.Spec.Containers[0].Args
	if v, _ := argValue(args, "provisioner-command"); v == "" {
		t.Errorf("managers run without --provisioner-command")
	}
	var env []string
	for _, e := range mgr.Spec.Template.Spec.Containers[0].Env {
		if e.Value != "" {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	if !slices.Contains(env, "SHOAL_K8S_STATEFULSET="+nodes.Name) {
		t.Errorf("manager env %v does not name the storage StatefulSet %s", env, nodes.Name)
	}
	allowed := map[string]bool{} // "verb resource/name"
	for _, b := range m.bindings {
		bound := false
		for _, s := range b.Subjects {
			bound = bound || (s.Kind == rbacv1.ServiceAccountKind && s.Name == sa)
		}
		if !bound {
			continue
		}
		r := m.roles[b.RoleRef.Name]
		if b.RoleRef.Kind != "Role" || b.RoleRef.APIGroup != rbacv1.GroupName || r == nil {
			t.Fatalf("RoleBinding %s refers to %s %s, not a declared Role", b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		}
		for _, rule := range r.Rules {
			if !slices.Equal(rule.APIGroups, []string{"apps"}) || len(rule.ResourceNames) == 0 {
				t.Errorf("Role %s: rule %v is not limited to named apps resources", r.Name, rule)
			}
			for _, v := range rule.Verbs {
				for _, res := range rule.Resources {
					for _, n := range rule.ResourceNames {
						allowed[v+" "+res+"/"+n] = true
					}
				}
			}
		}
	}
	// What `kubectl scale statefulset/X --current-replicas` and the
	// script's `kubectl get` need.
	want := []string{
		"get statefulsets/" + nodes.Name,
		"get statefulsets/scale/" + nodes.Name,
		"patch statefulsets/scale/" + nodes.Name,
		"update statefulsets/scale/" + nodes.Name,
	}
	var got []string
	for k := range allowed {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("manager account %s may do %v, want exactly %v", sa, got, want)
	}
}

// TestDockerfileShipsProvisioner: the manager image holds the script at
// the path --provisioner-command runs.
func TestDockerfileShipsProvisioner(t *testing.T) {
	m := load(t)
	cmd, _ := argValue(m.statefulSets["shoal-manager"].Spec.Template.Spec.Containers[0].Args, "provisioner-command")
	df, err := os.ReadFile("Dockerfile.manager")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(df, []byte("COPY provisioner.sh "+cmd+"\n")) || !bytes.Contains(df, []byte("kubectl")) {
		t.Errorf("Dockerfile.manager does not install provisioner.sh as %s with kubectl", cmd)
	}
}

// pendingFlags are flags the manifests use that this build does not have
// yet (another branch adds them: docs/operations.md, "Kubernetes"). The
// test fails once one is accepted, so the list cannot go stale.
var pendingFlags = map[string]bool{}

// TestArgsAreFlagsOfTheBinary builds shoal and checks that every flag in
// the manager and proxy arguments is one of the subcommand's flags, and
// that `shoal server` accepts the storage nodes' directives.
func TestArgsAreFlagsOfTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the shoal binary")
	}
	m := load(t)
	bin := filepath.Join(t.TempDir(), "shoal")
	build := exec.Command("go", "build", "-o", bin, "./cmd/shoal")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	expand := strings.NewReplacer("$(POD_NAME)", "shoal-manager-1", "$(POD_IP)", "10.0.0.1")
	for _, w := range m.workloads() {
		for _, c := range w.template.Spec.Containers {
			if len(c.Args) == 0 {
				t.Errorf("%s %s: no arguments", w.kind, w.name)
				continue
			}
			role, args := c.Args[0], c.Args[1:]
			switch role {
			case "manager", "proxy":
				out, _ := exec.Command(bin, role, "-h").CombinedOutput()
				known := map[string]bool{}
				for _, g := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
					known[g[1]] = true
				}
				if len(known) < 3 {
					t.Fatalf("shoal %s -h listed no flags:\n%s", role, out)
				}
				for _, a := range args {
					name, ok := strings.CutPrefix(a, "--")
					if !ok {
						continue
					}
					name, _, _ = strings.Cut(name, "=")
					checkFlag(t, role, name, known[name])
				}
			case "server":
				// Directives are checked in order: an unknown one stops
				// the parse before the server starts. Drop the pending
				// ones, then add one we know is unknown: reaching it means
				// every directive before it parsed.
				var rest []string
				for i := 0; i < len(args); i++ {
					if pendingFlags["server "+args[i]] {
						checkPending(t, bin, args[i], args[i+1])
						i++
						continue
					}
					rest = append(rest, expand.Replace(args[i]))
				}
				out, _ := exec.Command(bin, append(append([]string{"server"}, rest...), "--k8s-test-end", "1")...).CombinedOutput()
				if !strings.Contains(string(out), "unknown directive 'k8s-test-end'") {
					t.Errorf("shoal server %v: %s", rest, out)
				}
			case "ctl":
				// Parsed by hand; TestArgsReferToDeclaredThings checks them.
			default:
				t.Errorf("%s %s: unknown role %q", w.kind, w.name, role)
			}
		}
	}
}

func checkFlag(t *testing.T, role, name string, known bool) {
	t.Helper()
	switch pending := pendingFlags[role+" --"+name]; {
	case known && pending:
		t.Errorf("shoal %s now has --%s: remove it from pendingFlags", role, name)
	case !known && !pending:
		t.Errorf("shoal %s has no flag --%s", role, name)
	case pending:
		t.Logf("shoal %s --%s: pending on another branch", role, name)
	}
}

// checkPending fails once `shoal server` accepts a pending directive.
func checkPending(t *testing.T, bin, flag, value string) {
	t.Helper()
	out, _ := exec.Command(bin, "server", flag, value, "--k8s-test-end", "1").CombinedOutput()
	if strings.Contains(string(out), "unknown directive 'k8s-test-end'") {
		t.Errorf("shoal server now accepts %s: remove it from pendingFlags", flag)
	} else {
		t.Logf("shoal server %s: pending on another branch (%s)", flag, strings.TrimSpace(string(out)))
	}
}
