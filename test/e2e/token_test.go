package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/testcert"
)

// TestManagerTokenCtl: shoal manager --admin-token-file, and shoal ctl
// without a token (401, said clearly), with --token, --token-file and
// $SHOAL_TOKEN.
func TestManagerTokenCtl(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(shoalBin, "manager", "--id", "m1", "--bootstrap", "--dir", filepath.Join(dir, "m1"),
		"--http-addr", httpAddr, "--raft-addr", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--admin-token-file", tokFile)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("manager log:\n%s", log.String())
		}
	})
	// Ready when /healthz (open without a token) answers.
	deadline := time.Now().Add(20 * time.Second)
	delay := 5 * time.Millisecond
	for {
		r, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			r.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("manager not up: %v", err)
		}
		select {
		case <-done:
			t.Fatal("manager exited")
		case <-time.After(delay): // no event to await before it listens
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
	ctl := func(env []string, args ...string) (string, error) {
		c := exec.Command(shoalBin, append([]string{"ctl", "--manager", httpAddr, "--timeout", "10s"}, args...)...)
		c.Env = append(os.Environ(), env...)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	out, err := ctl(nil, "config", "get")
	if err == nil || !strings.Contains(out, "unauthorized: this manager requires a token") {
		t.Errorf("ctl without a token: %v\n%s", err, out)
	}
	out, err = ctl(nil, "--token", "wrong", "config", "get")
	if err == nil || !strings.Contains(out, "not valid") {
		t.Errorf("ctl with a wrong token: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"--token", "s3cret-token"}},
		{nil, []string{"--token-file", tokFile}},
		{[]string{"SHOAL_TOKEN=s3cret-token"}, nil},
	} {
		out, err := ctl(tc.env, append(tc.args, "config", "set", "replicas_per_shard", "1")...)
		if err != nil {
			t.Errorf("ctl %v %v: %v\n%s", tc.env, tc.args, err, out)
		}
	}
}

// TestRedisCLITLS: redis-cli --tls with a client certificate against
// tls-port, and a password on top.
func TestRedisCLITLS(t *testing.T) {
	bin := needTool(t, "redis-cli")
	certs := testcert.New(t)
	tport := freePort(t)
	p := startShoal(t, "--tls-port", strconv.Itoa(tport), "--tls-cert-file", certs.ServerCert, "--tls-key-file", certs.ServerKey,
		"--tls-ca-cert-file", certs.CA, "--requirepass", "pw")
	run := func(extra ...string) string {
		args := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(tport), "--tls", "--cacert", certs.CA, "--no-auth-warning"}, extra...)
		out, _ := exec.Command(bin, args...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	withCert := []string{"--cert", certs.ClientCert, "--key", certs.ClientKey}
	if got := run(append(withCert, "-a", "pw", "SET", "k", "tls")...); got != "OK" {
		t.Fatalf("SET over TLS: %q", got)
	}
	if got := run(append(withCert, "-a", "pw", "GET", "k")...); got != "tls" {
		t.Errorf("GET over TLS: %q", got)
	}
	if got := run(append(withCert, "GET", "k")...); !strings.Contains(got, "NOAUTH") {
		t.Errorf("no password over TLS: %q", got)
	}
	if got := run("-a", "pw", "GET", "k"); strings.Contains(got, "tls") {
		t.Errorf("served without a client certificate: %q", got)
	}
	if got := cli(t, p, "", "-a", "pw", "--no-auth-warning", "GET", "k"); got != "tls" {
		t.Errorf("plaintext port: %q", got)
	}
}
