package k8s

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeKubectl puts a kubectl on PATH that appends its arguments (one call
// a line) to a log, prints `replicas` for a get, and exits with status
// `fail` for a scale.
func fakeKubectl(t *testing.T, replicas string, fail int) (dir, log string) {
	t.Helper()
	dir = t.TempDir()
	log = filepath.Join(dir, "calls")
	script := `#!/bin/sh
echo "$*" >> "` + log + `"
for a in "$@"; do
	case $a in
	get) printf '%s' '` + replicas + `'; exit 0 ;;
	scale) exit ` + string(rune('0'+fail)) + ` ;;
	esac
done
exit 3
`
	if err := os.WriteFile(filepath.Join(dir, "kubectl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, log
}

func runProvisioner(t *testing.T, path string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "./provisioner.sh")
	cmd.Env = append([]string{"PATH=" + path + ":/usr/bin:/bin"}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func calls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestProvisionerScalesStatefulSet(t *testing.T) {
	dir, log := fakeKubectl(t, "6", 0)
	out, err := runProvisioner(t, dir, "SHOAL_PROVISION_NODES=2", "SHOAL_PROVISION_REASON=ops/s per shard above 50000",
		"SHOAL_K8S_NAMESPACE=kv", "SHOAL_MANAGERS=a:7000,b:7000")
	if err != nil {
		t.Fatalf("provisioner: %v\n%s", err, out)
	}
	want := []string{
		"--namespace=kv get statefulset/shoal-node -o jsonpath={.spec.replicas}",
		"--namespace=kv scale statefulset/shoal-node --current-replicas=6 --replicas=8",
	}
	if got := calls(t, log); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kubectl calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(out, "6 -> 8 replicas (ops/s per shard above 50000)") {
		t.Errorf("output %q does not say what it did and why", out)
	}
}

func TestProvisionerNamesOtherStatefulSetAndCaps(t *testing.T) {
	dir, log := fakeKubectl(t, "9", 0)
	out, err := runProvisioner(t, dir, "SHOAL_PROVISION_NODES=3", "SHOAL_K8S_STATEFULSET=kv-node", "SHOAL_K8S_MAX_REPLICAS=10")
	if err != nil {
		t.Fatalf("provisioner: %v\n%s", err, out)
	}
	want := "scale statefulset/kv-node --current-replicas=9 --replicas=10"
	if got := calls(t, log); len(got) != 2 || got[1] != want {
		t.Fatalf("kubectl calls %q, want the get then %q", got, want)
	}
}

func TestProvisionerFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas string
		fail     int
		env      []string
		calls    int // kubectl calls made before giving up
		msg      string
	}{
		{"no count", "6", 0, nil, 0, "SHOAL_PROVISION_NODES must be a positive number"},
		{"bad count", "6", 0, []string{"SHOAL_PROVISION_NODES=two"}, 0, "must be a positive number"},
		{"unreadable replicas", "", 0, []string{"SHOAL_PROVISION_NODES=1"}, 1, "cannot read the replicas"},
		{"at the cap", "10", 0, []string{"SHOAL_PROVISION_NODES=1", "SHOAL_K8S_MAX_REPLICAS=10"}, 1, "not scaling"},
		{"scale refused", "6", 1, []string{"SHOAL_PROVISION_NODES=1"}, 2, "6 -> 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, log := fakeKubectl(t, tc.replicas, tc.fail)
			out, err := runProvisioner(t, dir, tc.env...)
			if err == nil {
				t.Fatalf("provisioner succeeded:\n%s", out)
			}
			if !strings.Contains(out, tc.msg) {
				t.Errorf("output %q does not contain %q", out, tc.msg)
			}
			if got := calls(t, log); len(got) != tc.calls {
				t.Errorf("kubectl calls %q, want %d", got, tc.calls)
			}
		})
	}
}
