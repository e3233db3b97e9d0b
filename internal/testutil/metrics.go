package testutil

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"testing"
	"time"
)

// HTTPGet fetches url (10 s limit) and returns its status and body.
func HTTPGet(t testing.TB, url string) (int, string) {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second}
	r, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

// DocumentedMetrics reads the metric names with prefix from the tables of
// docs/metrics.md (the test's working directory is a package two levels
// below the repository root). It fails on fewer than 10: a table lost.
func DocumentedMetrics(t testing.TB, prefix string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?m)^\\| `(" + prefix + "[a-z_]+)` \\|")
	names := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		names[m[1]] = true
	}
	if len(names) < 10 {
		t.Fatalf("only %d %s names in docs/metrics.md", len(names), prefix)
	}
	return names
}

// CheckDocumentedMetrics fails unless seen has exactly the names with
// prefix that docs/metrics.md documents.
func CheckDocumentedMetrics(t testing.TB, prefix string, seen map[string]bool) {
	t.Helper()
	doc := DocumentedMetrics(t, prefix)
	var missing, extra []string
	for n := range doc {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	for n := range seen {
		if !doc[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("documented but not exported: %v; exported but not in docs/metrics.md: %v", missing, extra)
	}
}
