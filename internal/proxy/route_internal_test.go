package proxy

import "testing"

// TestFencedReply: only a slot move's cutover gets the short retry
// backoff; a primary without its lease (also TRYAGAIN) backs off as for
// a failover.
func TestFencedReply(t *testing.T) {
	for _, tc := range []struct {
		reply string
		want  bool
	}{
		{"-TRYAGAIN Slot 12 is moving to another shard: writes resume in a moment\r\n", true},
		{"SERVER_ERROR TRYAGAIN Slot 12 is moving to another shard: writes resume in a moment\r\n", true},
		{"-TRYAGAIN Write lease expired: this primary has no contact with the cluster manager\r\n", false},
		{"-TRYAGAIN This node is not serving as its shard's primary yet (waiting for the cluster manager)\r\n", false},
		{"-CLUSTERDOWN Hash slot not served\r\n", false},
		{"", false},
	} {
		if got := fenced([]byte(tc.reply)); got != tc.want {
			t.Errorf("fenced(%q) = %v, want %v", tc.reply, got, tc.want)
		}
	}
}
