package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/acl"
	"shoal/internal/config"
	"shoal/internal/server"
	tu "shoal/internal/testutil"
)

func TestACLUsersFromConfig(t *testing.T) {
	n := tu.StartServer(t, "requirepass", "dpw",
		"user", "alice on >secret ~app:* +@all -@dangerous",
		"user", "reader on >r ~* -@all +@read +auth +hello")
	c := tu.Dial(t, n.Addr)
	steps(t, c,
		"GET app:1", "(error) NOAUTH Authentication required.",
		"AUTH alice wrong", "(error) WRONGPASS invalid username-password pair or user is disabled.",
		"AUTH nobody secret", "(error) WRONGPASS invalid username-password pair or user is disabled.",
		"AUTH alice secret", "OK",
		"ACL WHOAMI", `"alice"`,
		"SET app:1 v", "OK",
		"GET app:1", `"v"`,
		"SET other v", "(error) NOPERM No permissions to access a key",
		"MSET app:2 v other v", "(error) NOPERM No permissions to access a key",
		"KEYS *", "(error) NOPERM User alice has no permissions to run the 'keys' command",
		"FLUSHALL", "(error) NOPERM User alice has no permissions to run the 'flushall' command",
		"CONFIG GET port", "(error) NOPERM User alice has no permissions to run the 'config' command",
		"PUBLISH ch m", "(error) NOPERM No permissions to access a channel",
		// Refused inside MULTI at queue time: EXEC aborts.
		"MULTI", "OK",
		"SET app:3 v", "QUEUED",
		"SET other v", "(error) NOPERM No permissions to access a key",
		"EXEC", "(error) EXECABORT Transaction discarded because of previous errors.",
		"GET app:3", "(nil)",
	)
	r := tu.Dial(t, n.Addr)
	steps(t, r,
		"HELLO 2 AUTH reader wrong", "(error) WRONGPASS invalid username-password pair or user is disabled.",
		"AUTH reader r", "OK",
		"GET app:1", `"v"`,
		"SET app:1 w", "(error) NOPERM User reader has no permissions to run the 'set' command",
		"ACL WHOAMI", "(error) NOPERM User reader has no permissions to run the 'acl|whoami' command",
		// requirepass is the default user's password.
		"AUTH dpw", "OK",
		"SET anything v", "OK",
		"ACL WHOAMI", `"default"`,
	)
	if got := r.Do("CLIENT", "INFO"); !strings.Contains(got, " user=default ") {
		t.Errorf("CLIENT INFO = %s", got)
	}
	if got := c.Do("CLIENT", "INFO"); !strings.Contains(got, " user=alice ") {
		t.Errorf("CLIENT INFO (alice) = %s", got)
	}
	steps(t, r, "CLIENT KILL USER nobody", "(integer) 0", "CLIENT KILL USER alice", "(integer) 1")
	if !c.Closed(5 * time.Second) {
		t.Error("CLIENT KILL USER alice left alice's connection open")
	}
	steps(t, r, "RESET", "RESET", "GET x", "(error) NOAUTH Authentication required.")
}

func TestACLCommands(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	steps(t, c,
		"ACL WHOAMI", `"default"`,
		"ACL USERS", `["default"]`,
		"ACL LIST", `["user default on nopass ~* &* +@all"]`,
		"ACL SETUSER bob on >pw ~k* &* +get +set", "OK",
		"ACL SETUSER bob +nosuch", "(error) ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL",
		"ACL SETUSER bob bogus", "(error) ERR Error in ACL SETUSER modifier 'bogus': Syntax error",
		"ACL USERS", `["bob" "default"]`,
		"ACL GETUSER nobody", "(nil)",
		"ACL DRYRUN bob get k1", "OK",
		"ACL DRYRUN bob get x", `"This user has no permissions to access a key"`,
		"ACL DRYRUN bob del k1", `"This user has no permissions to run the 'del' command"`,
		"ACL DELUSER default", "(error) ERR The 'default' user cannot be removed",
		"ACL CAT nosuch", "(error) ERR Unknown category 'nosuch'",
		"ACL LOAD", "(error) ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.",
		"ACL NOSUCH", "(error) ERR unknown subcommand 'NOSUCH'. Try ACL HELP.",
	)
	got := c.Do("ACL", "GETUSER", "bob")
	for _, want := range []string{`"flags"`, `["on"]`, `"passwords"`, `"` + acl.HashPassword("pw") + `"`, `"commands"`, `"-@all +get +set"`, `"keys"`, `"~k*"`, `"channels"`, `"&*"`} {
		if !strings.Contains(got, want) {
			t.Errorf("GETUSER bob lacks %s:\n%s", want, got)
		}
	}
	if cats := c.Do("ACL", "CAT"); !strings.Contains(cats, `"dangerous"`) || !strings.Contains(cats, `"read"`) {
		t.Errorf("ACL CAT = %s", cats)
	}
	if cmds := c.Do("ACL", "CAT", "write"); !strings.Contains(cmds, `"set"`) || strings.Contains(cmds, `"get"`) {
		t.Errorf("ACL CAT write = %s", cmds)
	}
	if p := c.Do("ACL", "GENPASS"); len(p) != 64+2 {
		t.Errorf("GENPASS = %s", p)
	}

	// A connection authenticated as bob sees later changes at once and
	// is closed when bob is deleted.
	b := tu.Dial(t, n.Addr)
	steps(t, b, "AUTH bob pw", "OK", "SET k1 v", "OK", "DEL k1", "(error) NOPERM User bob has no permissions to run the 'del' command")
	steps(t, c, "ACL SETUSER bob +del", "OK")
	steps(t, b, "DEL k1", "(integer) 1")
	// Rules changed between MULTI's queueing and EXEC apply at EXEC.
	steps(t, c, "ACL SETUSER bob +@transaction", "OK")
	steps(t, b, "MULTI", "OK", "SET k1 a", "QUEUED", "DEL k1", "QUEUED")
	steps(t, c, "ACL SETUSER bob -del", "OK")
	steps(t, b, "EXEC", "[OK (error) NOPERM User bob has no permissions to run the 'del' command]", "GET k1", `"a"`)
	steps(t, c, "ACL SETUSER bob off", "OK")
	steps(t, b, "GET k1", `"a"`) // off stops new logins only, as Redis
	other := tu.Dial(t, n.Addr)
	steps(t, other, "AUTH bob pw", "(error) WRONGPASS invalid username-password pair or user is disabled.")
	steps(t, c, "ACL DELUSER bob nobody", "(integer) 1")
	if !b.Closed(5 * time.Second) {
		t.Error("bob's connection survived ACL DELUSER")
	}
	steps(t, c, "ACL USERS", `["default"]`, "ACL LIST", `["user default on nopass ~* &* +@all"]`)
}

func TestACLDefaultUserRules(t *testing.T) {
	// Restricting the default user applies to connections that never
	// authenticate.
	n := tu.StartServer(t, "user", "default on nopass resetkeys ~pub:* &* +@all -@write")
	c := tu.Dial(t, n.Addr)
	steps(t, c,
		"GET pub:x", "(nil)",
		"GET priv", "(error) NOPERM No permissions to access a key",
		"SET pub:x 1", "(error) NOPERM User default has no permissions to run the 'set' command",
	)
	// Turning the default user off: new connections must AUTH; the
	// open one keeps working (as Redis).
	steps(t, c, "ACL SETUSER admin on >apw ~* &* +@all", "OK", "ACL SETUSER default off", "OK", "GET pub:x", "(nil)")
	d := tu.Dial(t, n.Addr)
	steps(t, d, "GET pub:x", "(error) NOAUTH Authentication required.",
		"AUTH default x", "(error) WRONGPASS invalid username-password pair or user is disabled.",
		"AUTH admin apw", "OK", "SET priv 1", "OK")
}

func TestACLUserDirectiveErrors(t *testing.T) {
	cfg := config.Default()
	if err := cfg.ParseArgs([]string{"--user", "alice on +nosuchcmd"}); err != nil {
		t.Fatal(err)
	}
	_, err := server.New(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "'+nosuchcmd': Unknown command") {
		t.Fatalf("New = %v", err)
	}
	if err := cfg.Set("user", "bob on", true); err == nil {
		t.Error("user directive accepted at runtime")
	}
}

func TestACLGoRedis(t *testing.T) {
	n := tu.StartServer(t, "user", "app on >s3cret ~app:* &* +@all -@dangerous")
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr, Username: "app", Password: "s3cret", Protocol: proto})
		if err := rdb.Set(ctx, "app:k", "v", 0).Err(); err != nil {
			t.Fatalf("RESP%d set: %v", proto, err)
		}
		err := rdb.Set(ctx, "other", "v", 0).Err()
		if err == nil || err.Error() != "NOPERM No permissions to access a key" {
			t.Errorf("RESP%d set other: %v", proto, err)
		}
		if who, err := rdb.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != "app" {
			t.Errorf("RESP%d whoami: %q %v", proto, who, err)
		}
		rdb.Close()
		bad := redis.NewClient(&redis.Options{Addr: n.Addr, Username: "app", Password: "nope", Protocol: proto, MaxRetries: -1})
		err = bad.Ping(ctx).Err()
		var rerr redis.Error
		if !errors.As(err, &rerr) || !strings.HasPrefix(err.Error(), "WRONGPASS") {
			t.Errorf("RESP%d wrong password: %v", proto, err)
		}
		bad.Close()
	}
}

// TestACLConfigRewrite: CONFIG REWRITE writes the current users as
// "user" lines (replacing the file's), so ACL SETUSER/DELUSER survive a
// restart; requirepass keeps carrying the default user's password.
func TestACLConfigRewrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shoal.conf")
	conf := "dir " + dir + "\nrequirepass adminpw\nuser alice on >apw ~* +@all\n# users above\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c := tu.Dial(t, startWithFile(t, path, tu.FreePort(t)))
	steps(t, c, "AUTH adminpw", "OK",
		"ACL SETUSER bob on >bpw ~b:* +get", "OK",
		"ACL DELUSER alice", "(integer) 1",
		"CONFIG REWRITE", "OK")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	want := "user bob on #" + acl.HashPassword("bpw") + " ~b:* resetchannels -@all +get\n"
	if !strings.Contains(got, want) || strings.Contains(got, "alice") || strings.Contains(got, "user default") ||
		!strings.Contains(got, "requirepass adminpw\n") || !strings.Contains(got, "# users above\n") {
		t.Fatalf("rewritten file:\n%s", got)
	}
	again := tu.Dial(t, startWithFile(t, path, tu.FreePort(t)))
	steps(t, again,
		"AUTH alice apw", "(error) WRONGPASS invalid username-password pair or user is disabled.",
		"AUTH bob bpw", "OK",
		"GET b:1", "(nil)",
		"GET other", "(error) NOPERM No permissions to access a key",
		"AUTH adminpw", "OK")
	// A changed default user is written too (and wins over requirepass
	// only if requirepass is changed with it: both lines are kept).
	steps(t, again, "ACL SETUSER default -flushall", "OK", "CONFIG REWRITE", "OK")
	b, _ = os.ReadFile(path)
	if !strings.Contains(string(b), "user default on #"+acl.HashPassword("adminpw")+" ~* &* +@all -flushall\n") {
		t.Fatalf("default user not written:\n%s", b)
	}
}
