//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/decnet/mazenet/cmd/internal/benchkit"
	"github.com/decnet/mazenet/internal/domain"
)

// centrifugoServer is Centrifugo v6 with its memory engine, serving the same
// subscribers over its unidirectional SSE transport. Events are published
// with its HTTP API, one call per event, as a backend would.
type centrifugoServer struct {
	b        *bench
	p        *benchkit.Proc
	port     int
	apiKey   string
	channels []string
	client   *http.Client
}

// maxPublishesInFlight bounds the concurrent /api/publish calls, as a
// backend's connection pool would.
const maxPublishesInFlight = 64

// centrifugoConfig is the whole configuration, written at run time (and
// listed in docs/BENCHMARKS.md): memory engine; anonymous connections
// without a token; any client, anonymous included, may subscribe to
// channels outside namespaces, which the unidirectional SSE connect request
// uses to ask for its server-side subscription; the HTTP API with a key;
// /health and /debug/pprof for the tool. Everything else is Centrifugo's
// default (logging at info, like mazenet's processes).
func centrifugoConfig(port int, apiKey string) map[string]any {
	return map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"log":         map[string]any{"level": "info"},
		"engine":      map[string]any{"type": "memory"},
		"client":      map[string]any{"allow_anonymous_connect_without_token": true},
		"channel": map[string]any{"without_namespace": map[string]any{
			"allow_subscribe_for_client": true, "allow_subscribe_for_anonymous": true,
		}},
		"uni_sse":  map[string]any{"enabled": true},
		"http_api": map[string]any{"key": apiKey},
		"health":   map[string]any{"enabled": true},
		"debug":    map[string]any{"enabled": true},
	}
}

func (c *centrifugoServer) name() string { return "centrifugo" }

func (c *centrifugoServer) open(_ context.Context, _, topics int) error {
	var err error
	if c.port, err = benchkit.FreePort(); err != nil {
		return err
	}
	c.apiKey = benchkit.RandHex(16)
	raw, _ := json.MarshalIndent(centrifugoConfig(c.port, c.apiKey), "", "  ")
	cfgPath := filepath.Join(c.b.workDir, "centrifugo.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return err
	}
	c.channels = make([]string, topics)
	for i := range c.channels {
		c.channels[i] = uuid.NewString() // the same shape as a topology id in the envelope
	}
	c.client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxConnsPerHost: maxPublishesInFlight, MaxIdleConnsPerHost: maxPublishesInFlight}}
	if c.p, err = benchkit.Start(benchkit.Spec{
		Name: "centrifugo", Bin: c.b.o.centrifugoBin, Args: []string{"-c", cfgPath}, LogDir: c.b.workDir, Janitor: c.b.janitor, Ready: "serving",
	}); err != nil {
		return err
	}
	c.p.ProfileBase = "http://" + c.addr() + "/debug/pprof/"
	if err := benchkit.WaitHTTP("http://"+c.addr()+"/health", 10*time.Second); err != nil {
		c.p.Stop()
		return err
	}
	return nil
}

func (c *centrifugoServer) proc() *benchkit.Proc    { return c.p }
func (c *centrifugoServer) addr() string            { return "127.0.0.1:" + strconv.Itoa(c.port) }
func (c *centrifugoServer) topic(i int) int         { return i % len(c.channels) }
func (c *centrifugoServer) topicID(t int) string    { return c.channels[t] }
func (c *centrifugoServer) redisConns() int         { return -1 }
func (c *centrifugoServer) slowDrops() int          { return -1 }
func (c *centrifugoServer) close()                  { c.p.Stop() }
func (c *centrifugoServer) concurrentPublish() bool { return true }

// request is a browser's EventSource GET of the uni_sse endpoint with the
// connect command in cf_connect, asking for the subscriber's channel.
func (c *centrifugoServer) request(i int) func(string) string {
	connect, _ := json.Marshal(map[string]any{"subs": map[string]any{c.channels[c.topic(i)]: map[string]any{}}})
	req := "GET /connection/uni_sse?cf_connect=" + url.QueryEscape(string(connect)) +
		" HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
	return func(string) string { return req } // no resume: Centrifugo's uni_sse ignores Last-Event-ID
}

// publish calls /api/publish with the event's envelope as the data.
func (c *centrifugoServer) publish(ctx context.Context, t int, ev domain.Event) error {
	body, _ := json.Marshal(map[string]any{"channel": c.channels[t], "data": json.RawMessage(ev.Envelope())})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.addr()+"/api/publish", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", c.apiKey)
	// Lets net/http resend the call when a kept-alive connection turns out
	// closed before the request went out (Centrifugo ignores the header; a
	// frame delivered twice would be counted as a duplicate).
	req.Header.Set("X-Idempotency-Key", strconv.FormatInt(ev.Seq, 10))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || bytes.Contains(out, []byte(`"error"`)) {
		return fmt.Errorf("centrifugo publish: %d %s", resp.StatusCode, out)
	}
	return nil
}
