package manager

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"shoal/internal/cluster"
)

// Client talks to the managers' HTTP API: storage nodes' heartbeats,
// shoal ctl and shoal dev. It tries the addresses in turn (the last one
// that answered first) and follows a follower's hint to the leader.
type Client struct {
	Addrs []string     // host:port or http://host:port of one or more managers
	HTTP  *http.Client // nil: a client with a 10 s timeout
	// Retry is how long a call keeps retrying while no manager answers
	// or none is leader (an election); 0: 5 s, negative: one round.
	Retry time.Duration
	// Token is sent as "Authorization: Bearer <Token>" when set (the
	// managers' --admin-token or --cluster-token).
	Token string
	// TLS, if set, makes the calls HTTPS with this configuration (its
	// RootCAs trusting the managers' certificates); used when HTTP is nil.
	TLS *tls.Config

	mu   sync.Mutex
	hc   *http.Client // built from TLS once
	last string
}

// APIError is an error reply from a manager.
type APIError struct {
	Status int
	Msg    string
	Leader string
}

func (e *APIError) Error() string { return e.Msg }

// Is makes a 409 reply match cluster.ErrMigratorLease (the migrator
// lease is another's).
func (e *APIError) Is(target error) bool {
	return target == cluster.ErrMigratorLease && e.Status == http.StatusConflict
}

// NewClient parses a comma-separated list of manager addresses.
func NewClient(list string) *Client {
	var addrs []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return &Client{Addrs: addrs}
}

func hostOf(a string) string {
	if u, err := url.Parse(a); err == nil && u.Host != "" {
		return u.Host
	}
	return a
}

func (c *Client) order() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.Addrs)+1)
	if c.last != "" {
		out = append(out, c.last)
	}
	for _, a := range c.Addrs {
		if h := hostOf(a); h != c.last {
			out = append(out, h)
		}
	}
	return out
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	budget := c.Retry
	if budget == 0 {
		budget = 5 * time.Second
	}
	deadline := time.Now().Add(budget)
	for {
		err, retry := c.round(ctx, method, path, body, out)
		if !retry || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// round tries every manager once; retry reports whether trying again
// later may help (no answer, or no leader).
func (c *Client) round(ctx context.Context, method, path string, body []byte, out any) (error, bool) {
	hc := c.HTTP
	if hc == nil {
		hc = c.defaultHTTP()
	}
	if lp, ok := ctx.Value(longPollKey{}).(time.Duration); ok && hc.Timeout > 0 {
		// A long poll is answered after up to its wait: the request's
		// time limit counts from then.
		c2 := *hc
		c2.Timeout += lp
		hc = &c2
	}
	if len(c.Addrs) == 0 {
		return errors.New("no manager address"), false
	}
	var last error
	tried := map[string]bool{}
	queue := c.order()
	for len(queue) > 0 {
		host := queue[0]
		queue = queue[1:]
		if tried[host] {
			continue
		}
		tried[host] = true
		scheme := "http://"
		if c.TLS != nil {
			scheme = "https://"
		}
		req, err := http.NewRequestWithContext(ctx, method, scheme+host+path, bytes.NewReader(body))
		if err != nil {
			return err, false
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err
			if ctx.Err() != nil {
				return ctx.Err(), false
			}
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			last = err
			continue
		}
		if resp.StatusCode != http.StatusOK {
			var ae apiError
			json.Unmarshal(data, &ae)
			if ae.Error == "" {
				ae.Error = fmt.Sprintf("%s %s: HTTP %d", method, path, resp.StatusCode)
			}
			last = &APIError{Status: resp.StatusCode, Msg: ae.Error, Leader: ae.Leader}
			if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusBadGateway {
				if ae.Leader != "" && !tried[ae.Leader] {
					queue = append([]string{ae.Leader}, queue...)
				}
				continue
			}
			return last, false
		}
		c.mu.Lock()
		c.last = host
		c.mu.Unlock()
		if out != nil {
			var err error
			if m, ok := out.(*cluster.Map); ok { // every node's, proxy's and migrator's map
				err = cluster.UnmarshalMap(data, m)
			} else {
				err = json.Unmarshal(data, out)
			}
			if err != nil {
				return fmt.Errorf("%s %s: bad reply: %w", method, path, err), false
			}
		}
		return nil, false
	}
	return last, true
}

// defaultHTTP is the client used when HTTP is nil: a 10 s timeout, and
// the TLS configuration when set (one transport, reused).
func (c *Client) defaultHTTP() *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 10 * time.Second}
		if c.TLS != nil {
			c.hc.Transport = &http.Transport{TLSClientConfig: c.TLS, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 8}
		}
	}
	return c.hc
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Heartbeat sends one heartbeat.
func (c *Client) Heartbeat(ctx context.Context, hb *cluster.Heartbeat) (*cluster.HeartbeatReply, error) {
	var r cluster.HeartbeatReply
	if err := c.do(ctx, http.MethodPost, "/v1/heartbeat", mustJSON(hb), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// longPollKey marks a request's context with the wait of its long poll.
type longPollKey struct{}

// Map returns the cluster map; with wait > 0 it waits (long poll) until
// the epoch passes after.
func (c *Client) Map(ctx context.Context, after uint64, wait time.Duration) (*cluster.Map, error) {
	return c.getMap(ctx, "/v1/map?", after, wait)
}

// WindowMap is Map's window view (cluster.Map.WindowView): what storage
// nodes and migrators need, without the moves queued behind the window.
func (c *Client) WindowMap(ctx context.Context, after uint64, wait time.Duration) (*cluster.Map, error) {
	return c.getMap(ctx, "/v1/map?view=window&", after, wait)
}

// RoutesMap is Map's routes view (cluster.Map.RoutesView: no moves),
// what a proxy needs.
func (c *Client) RoutesMap(ctx context.Context, after uint64, wait time.Duration) (*cluster.Map, error) {
	return c.getMap(ctx, "/v1/map?view=routes&", after, wait)
}

func (c *Client) getMap(ctx context.Context, path string, after uint64, wait time.Duration) (*cluster.Map, error) {
	if wait > 0 {
		path += "epoch=" + strconv.FormatUint(after, 10) + "&wait=" + strconv.FormatFloat(wait.Seconds(), 'f', 3, 64)
	}
	path = strings.TrimSuffix(strings.TrimSuffix(path, "&"), "?")
	m := cluster.NewMap()
	if wait > 0 {
		ctx = context.WithValue(ctx, longPollKey{}, wait)
	}
	if err := c.do(ctx, http.MethodGet, path, nil, m); err != nil {
		return nil, err
	}
	return m, nil
}

// Status returns the cluster status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Create makes the first shards from the registered idle nodes.
func (c *Client) Create(ctx context.Context, shards int) (*Status, error) {
	var s Status
	err := c.do(ctx, http.MethodPost, "/v1/create", mustJSON(map[string]int{"shards": shards}), &s)
	return &s, err
}

// AddShard makes a shard of idle nodes (ids or RESP addresses).
func (c *Client) AddShard(ctx context.Context, nodes []string) (*Status, error) {
	return c.AddShardMoving(ctx, nodes, false)
}

// AddShardMoving is AddShard that, with rebalance, also queues the moves
// giving the new shard its weighted share of slots (from the others).
func (c *Client) AddShardMoving(ctx context.Context, nodes []string, rebalance bool) (*Status, error) {
	var s Status
	err := c.do(ctx, http.MethodPost, "/v1/shards", mustJSON(map[string]any{"nodes": nodes, "rebalance": rebalance}), &s)
	return &s, err
}

// RemoveNode removes a node (id or RESP address) from the map.
func (c *Client) RemoveNode(ctx context.Context, node string) error {
	return c.do(ctx, http.MethodDelete, "/v1/nodes/"+url.PathEscape(node), nil, nil)
}

// Failover runs a graceful failover of shard and returns the new primary's id.
func (c *Client) Failover(ctx context.Context, shard int, timeout time.Duration) (string, error) {
	var r struct {
		Primary string `json:"primary"`
	}
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/shards/%d/failover?timeout=%s", shard, timeout), nil, &r)
	return r.Primary, err
}

// Config returns the cluster settings.
func (c *Client) Config(ctx context.Context) (*cluster.Settings, error) {
	var s cluster.Settings
	err := c.do(ctx, http.MethodGet, "/v1/config", nil, &s)
	return &s, err
}

// SetConfig changes one setting.
func (c *Client) SetConfig(ctx context.Context, key string, value int) (*cluster.Settings, error) {
	var s cluster.Settings
	err := c.do(ctx, http.MethodPut, "/v1/config", mustJSON(map[string]any{"key": key, "value": value}), &s)
	return &s, err
}

// Migrate queues moves of slots to shard to.
func (c *Client) Migrate(ctx context.Context, slots []int, to int) ([]*cluster.Migration, error) {
	var out []*cluster.Migration
	err := c.do(ctx, http.MethodPost, "/v1/migrations", mustJSON(map[string]any{"slots": slots, "to": to}), &out)
	return out, err
}

// MigrationAction pauses, resumes or cancels moves (action "pause",
// "resume" or "cancel"): the slots given, or every move with all.
func (c *Client) MigrationAction(ctx context.Context, action string, slots []int, all bool) ([]*cluster.Migration, error) {
	var out []*cluster.Migration
	err := c.do(ctx, http.MethodPost, "/v1/migrations/"+action, mustJSON(map[string]any{"slots": slots, "all": all}), &out)
	return out, err
}

// Migrations lists the moves in progress.
func (c *Client) Migrations(ctx context.Context) ([]*cluster.Migration, error) {
	var out []*cluster.Migration
	err := c.do(ctx, http.MethodGet, "/v1/migrations", nil, &out)
	return out, err
}

// Rebalance plans (and unless dryRun queues) load- or weight-based moves.
func (c *Client) Rebalance(ctx context.Context, dryRun bool, maxMoves int) (*PlanReply, error) {
	var out PlanReply
	err := c.do(ctx, http.MethodPost, "/v1/rebalance", mustJSON(map[string]any{"dry_run": dryRun, "max_moves": maxMoves}), &out)
	return &out, err
}

// Drain plans (and unless dryRun queues) the moves of all of a shard's slots.
func (c *Client) Drain(ctx context.Context, shard int, dryRun bool) (*PlanReply, error) {
	var out PlanReply
	err := c.do(ctx, http.MethodPost, "/v1/shards/"+strconv.Itoa(shard)+"/drain", mustJSON(map[string]any{"dry_run": dryRun}), &out)
	return &out, err
}

// SetWeight sets a shard's weight (0: its primary node's weight).
func (c *Client) SetWeight(ctx context.Context, shard, weight int) error {
	return c.do(ctx, http.MethodPut, "/v1/shards/"+strconv.Itoa(shard)+"/weight", mustJSON(map[string]int{"weight": weight}), nil)
}

// Autoscale returns the autoscaler's status and recent decisions.
func (c *Client) Autoscale(ctx context.Context) (*AutoscaleStatus, error) {
	var out AutoscaleStatus
	err := c.do(ctx, http.MethodGet, "/v1/autoscale", nil, &out)
	return &out, err
}
