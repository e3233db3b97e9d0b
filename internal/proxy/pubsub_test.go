package proxy_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	tu "shoal/internal/testutil"
)

// TestProxyPubSub subscribes through one proxy and publishes through
// another over the same cluster (go-redis PubSub): channels on every
// shard, a pattern, PUBSUB's fan-out, subscribed mode, and a primary
// failover (the subscriber is moved to the new primary).
func TestProxyPubSub(t *testing.T) {
	c := newTCluster(t, 2, 1, nil)
	pa, pb := c.startProxy(10*time.Second), c.startProxy(10*time.Second)
	ids := c.shardIDs()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch0, ch1 := c.keyIn(ids[0], "chan"), c.keyIn(ids[1], "chan")

	sub := redis.NewClient(&redis.Options{Addr: pa.Addr(), Protocol: 2})
	defer sub.Close()
	pub := redis.NewClient(&redis.Options{Addr: pb.Addr(), Protocol: 2})
	defer pub.Close()
	ps := sub.Subscribe(ctx, ch0, ch1)
	defer ps.Close()
	for i := 0; i < 2; i++ {
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := ps.PSubscribe(ctx, "pat.*"); err != nil {
		t.Fatal(err)
	}
	if m, err := ps.Receive(ctx); err != nil || m.(*redis.Subscription).Count != 3 {
		t.Fatalf("psubscribe: %v %v", m, err)
	}
	expect := func(channel, pattern, payload string) {
		t.Helper()
		m, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Channel != channel || m.Pattern != pattern || m.Payload != payload {
			t.Fatalf("got %+v, want %s %s %s", m, channel, pattern, payload)
		}
	}
	for _, ch := range []string{ch0, ch1} {
		if n, err := pub.Publish(ctx, ch, "to "+ch).Result(); err != nil || n != 1 {
			t.Fatalf("PUBLISH %s: %d %v", ch, n, err)
		}
		expect(ch, "", "to "+ch)
	}
	for i := 0; i < 20; i++ { // pattern channels on every shard
		ch := "pat." + strconv.Itoa(i)
		if n, err := pub.Publish(ctx, ch, "p").Result(); err != nil || n != 1 {
			t.Fatalf("PUBLISH %s: %d %v", ch, n, err)
		}
		expect(ch, "pat.*", "p")
	}

	t.Run("PUBSUB fan-out", func(t *testing.T) {
		ns, err := pub.PubSubNumSub(ctx, ch0, ch1, "none").Result()
		if err != nil || ns[ch0] != 1 || ns[ch1] != 1 || ns["none"] != 0 {
			t.Errorf("NUMSUB: %v %v", ns, err)
		}
		chs, err := pub.PubSubChannels(ctx, "chan*").Result()
		if err != nil || len(chs) != 2 {
			t.Errorf("CHANNELS: %v %v", chs, err)
		}
		if n, err := pub.PubSubNumPat(ctx).Result(); err != nil || n != 1 {
			t.Errorf("NUMPAT: %v %v", n, err)
		}
	})

	t.Run("subscribed mode", func(t *testing.T) {
		cl := tu.Dial(t, pa.Addr())
		for _, bad := range [][]string{{"SUBSCRIBE"}, {"PUBSUB", "BOGUS"}, {"PUBLISH", "only-channel"}, {"PUBSUB", "CHANNELS", "a", "b"}} {
			if r := cl.Do(bad...); !strings.HasPrefix(r, "(error) ") {
				t.Errorf("%v: %s", bad, r)
			}
		}
		tu.Run(t, cl, []tu.Case{
			{[]string{"UNSUBSCRIBE"}, `["unsubscribe" (nil) (integer) 0]`},
			{[]string{"SUBSCRIBE", ch0}, `["subscribe" "` + ch0 + `" (integer) 1]`},
			{[]string{"GET", "k"}, "(error) ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"},
			{[]string{"PING"}, `["pong" ""]`},
			{[]string{"PSUBSCRIBE", "a*"}, `["psubscribe" "a*" (integer) 2]`},
			{[]string{"PUNSUBSCRIBE"}, `["punsubscribe" "a*" (integer) 1]`},
			{[]string{"UNSUBSCRIBE", ch0}, `["unsubscribe" "` + ch0 + `" (integer) 0]`},
			{[]string{"GET", "k"}, "(nil)"},
		})
		if n, err := pub.PubSubNumSub(ctx, ch0).Result(); err != nil || n[ch0] != 1 {
			t.Errorf("NUMSUB after the raw client left: %v %v", n, err)
		}
	})

	t.Run("failover moves the subscription", func(t *testing.T) {
		victim := c.primary(ids[0])
		victim.srv.Close()
		waitUntil(t, "a failover", func() bool { return c.primary(ids[0]) != victim })
		var payload string
		waitUntil(t, "the subscriber on the new primary", func() bool {
			payload = "after " + strconv.FormatInt(time.Now().UnixNano(), 10)
			n, err := pub.Publish(ctx, ch0, payload).Result()
			return err == nil && n == 1
		})
		for {
			m, err := ps.ReceiveMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Channel == ch0 && m.Payload == payload {
				break
			}
		}
		if err := ps.Unsubscribe(ctx, ch0); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the unsubscription", func() bool {
			n, err := pub.PubSubNumSub(ctx, ch0).Result()
			return err == nil && n[ch0] == 0
		})
	})
}
