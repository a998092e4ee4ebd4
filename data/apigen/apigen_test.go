package apigen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cogumi/cogumi/internal/teacher"
)

// memMemo is an in-memory Memo.
type memMemo struct {
	mu   sync.Mutex
	m    map[string][]byte
	puts int
}

func newMemo() *memMemo { return &memMemo{m: map[string][]byte{}} }

func (m *memMemo) Get(_ context.Context, k string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[k]
	return v, ok, nil
}

func (m *memMemo) Put(_ context.Context, k string, v []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[k] = append([]byte(nil), v...)
	m.puts++
	return nil
}

func questions(n int) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		d := []string{"coding", "math", "tool use"}[i%3]
		reqs[i] = Request{Seed: int64(1000 + i), Messages: []Message{
			{Role: "system", Content: "You write training data."},
			{Role: "user", Content: fmt.Sprintf("Write one hard %s question.", d)},
		}}
	}
	return reqs
}

func teacherServer(t *testing.T, o teacher.Options) (*teacher.Server, string) {
	t.Helper()
	s := teacher.New(o)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs.URL + "/v1"
}

func cfgFor(url string, memo Memo) Config {
	return Config{
		Endpoint: url, Model: "teacher-large", Memo: memo, Concurrency: 4,
		Params:     map[string]any{"temperature": 0.9, "max_tokens": 128},
		Price:      Price{InputPerMTok: 0.27, OutputPerMTok: 1.10},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	}
}

func TestRunStoresAndReuses(t *testing.T) {
	s, url := teacherServer(t, teacher.Options{})
	memo := newMemo()
	reqs := questions(30)
	ans, rep, err := Run(context.Background(), cfgFor(url, memo), reqs)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 30 || rep.Reused != 0 || memo.puts != 30 {
		t.Fatalf("first run: %+v, %d puts", rep, memo.puts)
	}
	st := s.Stats()
	if rep.TokensIn != st.PromptTokens || rep.TokensOut != st.CompletionTokens || rep.TokensIn == 0 {
		t.Fatalf("tokens %d/%d, server counted %d/%d", rep.TokensIn, rep.TokensOut, st.PromptTokens, st.CompletionTokens)
	}
	if want := (Price{0.27, 1.10}).Cost(st.PromptTokens, st.CompletionTokens); math.Abs(rep.Cost-want) > 1e-12 {
		t.Fatalf("cost %g, want %g", rep.Cost, want)
	}
	for i, a := range ans {
		if !strings.HasSuffix(a.Content, ".") && !strings.HasSuffix(a.Content, "?") {
			t.Fatalf("answer %d: %q", i, a.Content)
		}
	}
	ans2, rep2, err := Run(context.Background(), cfgFor(url, memo), reqs)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Sent != 0 || rep2.Reused != 30 || rep2.Cost != 0 || math.Abs(rep2.ReusedCost-rep.Cost) > 1e-12 {
		t.Fatalf("second run: %+v", rep2)
	}
	if s.Stats().Requests != 30 {
		t.Fatalf("server received %d requests, want 30", s.Stats().Requests)
	}
	for i := range ans {
		if ans[i].Content != ans2[i].Content {
			t.Fatalf("answer %d differs when reused", i)
		}
	}
	// One more parameter changes every key: all are asked again.
	c := cfgFor(url, memo)
	c.Params["top_p"] = 0.5
	if _, rep3, err := Run(context.Background(), c, reqs); err != nil || rep3.Sent != 30 {
		t.Fatalf("changed params: %+v, %v", rep3, err)
	}
}

func TestKeyExcludesAPIKey(t *testing.T) {
	c := cfgFor("http://x/v1", nil)
	c.APIKey = "sk-secret-123"
	k := c.Key(questions(1)[0])
	if strings.Contains(k, "sk-secret") {
		t.Fatalf("key holds the API key: %s", k)
	}
	c.APIKey = "other"
	if c.Key(questions(1)[0]) != k {
		t.Fatal("the key depends on the API key")
	}
	for _, change := range []func(*Config, *Request){
		func(c *Config, _ *Request) { c.Model = "m2" },
		func(c *Config, _ *Request) { c.Endpoint = "http://y/v1" },
		func(c *Config, _ *Request) { c.Params = map[string]any{"temperature": 0.8, "max_tokens": 128} },
		func(_ *Config, r *Request) { r.Seed++ },
		func(_ *Config, r *Request) { r.Messages = []Message{{Role: "user", Content: "x"}} },
	} {
		c2, r := cfgFor("http://x/v1", nil), questions(1)[0]
		change(&c2, &r)
		if c2.Key(r) == k {
			t.Fatalf("a change leaves the key as is: %s", k)
		}
	}
}

func TestFaultsLoseNothingAndPayOnce(t *testing.T) {
	s, url := teacherServer(t, teacher.Options{Fail429: 0.2, Fail500: 0.15, Drop: 0.1, RetryAfter: time.Second})
	memo := newMemo()
	reqs := questions(40)
	c := cfgFor(url, memo)
	c.Concurrency = 8
	c.MaxAttempts = 10
	ans, rep, err := Run(context.Background(), c, reqs)
	if err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if rep.Sent != 40 || st.ByStatus["200"] != 40 || st.Duplicates != 0 {
		t.Fatalf("report %+v, server %+v", rep, st)
	}
	failed := st.ByStatus["429"] + st.ByStatus["500"] + st.ByStatus["dropped"]
	if failed == 0 || rep.Retries != failed || rep.Attempts != st.Requests {
		t.Fatalf("retries %d, attempts %d; server saw %d failures of %d requests", rep.Retries, rep.Attempts, failed, st.Requests)
	}
	// The same answers as a server without faults.
	_, clean := teacherServer(t, teacher.Options{})
	want, _, err := Run(context.Background(), cfgFor(clean, nil), reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if ans[i].Content != want[i].Content {
			t.Fatalf("answer %d: %q, want %q", i, ans[i].Content, want[i].Content)
		}
	}
}

// failFirst answers 429 (with the given Retry-After) to the first attempt
// of every request, then passes requests on, recording when each came.
type failFirst struct {
	next       http.Handler
	retryAfter func() string
	mu         sync.Mutex
	seen       map[string][]time.Time
}

func (f *failFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.seen[string(b)] = append(f.seen[string(b)], time.Now())
	n := len(f.seen[string(b)])
	f.mu.Unlock()
	if n == 1 {
		w.Header().Set("Retry-After", f.retryAfter())
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintln(w, `{"error":{"message":"slow down","type":"rate_limit_error"}}`)
		return
	}
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	f.next.ServeHTTP(w, r)
}

func TestRetryAfterHonoured(t *testing.T) {
	for name, ra := range map[string]func() string{
		"seconds":   func() string { return "1" },
		"http-date": func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) },
	} {
		t.Run(name, func(t *testing.T) {
			f := &failFirst{next: teacher.New(teacher.Options{}), retryAfter: ra, seen: map[string][]time.Time{}}
			hs := httptest.NewServer(f)
			defer hs.Close()
			_, rep, err := Run(context.Background(), cfgFor(hs.URL+"/v1", nil), questions(3))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Retries != 3 || rep.Sent != 3 {
				t.Fatalf("%+v", rep)
			}
			for body, ts := range f.seen {
				// An HTTP date has whole seconds: at least 1s remains of 2s.
				if len(ts) != 2 || ts[1].Sub(ts[0]) < time.Second-10*time.Millisecond {
					t.Fatalf("request %.40s: attempts at %v", body, ts)
				}
			}
		})
	}
}

func TestBudgetStopsBeforeOverspending(t *testing.T) {
	s, url := teacherServer(t, teacher.Options{Slow: 20 * time.Millisecond})
	memo := newMemo()
	reqs := questions(40)
	c := cfgFor(url, memo)
	c.Price = Price{InputPerMTok: 1000, OutputPerMTok: 1000} // $0.001 a token
	worst := c.worst(reqs[0])
	c.MaxCost = 10.5 * worst
	_, rep, err := Run(context.Background(), c, reqs)
	if err == nil || !strings.Contains(err.Error(), "max_cost") || !strings.Contains(err.Error(), "kept in the cache") {
		t.Fatalf("err = %v", err)
	}
	if rep.Cost > c.MaxCost {
		t.Fatalf("spent $%g over max_cost $%g", rep.Cost, c.MaxCost)
	}
	if rep.Sent < 10 || rep.Sent+rep.NotSent != 40 || s.Stats().ByStatus["200"] != rep.Sent || memo.puts != rep.Sent {
		t.Fatalf("%+v; server %+v; %d stored", rep, s.Stats(), memo.puts)
	}
	// A larger budget next time sends only the missing requests.
	c.MaxCost = 100
	_, rep2, err := Run(context.Background(), c, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Reused != rep.Sent || rep2.Sent != rep.NotSent || s.Stats().Duplicates != 0 {
		t.Fatalf("second run %+v after %+v", rep2, rep)
	}
}

func TestConcurrencyBound(t *testing.T) {
	s, url := teacherServer(t, teacher.Options{Slow: 30 * time.Millisecond})
	c := cfgFor(url, nil)
	c.Concurrency = 3
	if _, _, err := Run(context.Background(), c, questions(24)); err != nil {
		t.Fatal(err)
	}
	if m := s.Stats().MaxInFlight; m != 3 {
		t.Fatalf("at most %d requests in flight, want 3", m)
	}
}

func TestRateLimit(t *testing.T) {
	_, url := teacherServer(t, teacher.Options{})
	c := cfgFor(url, nil)
	c.Concurrency = 8
	c.Rate = Rate{N: 50, Per: time.Second}
	start := time.Now()
	if _, _, err := Run(context.Background(), c, questions(11)); err != nil {
		t.Fatal(err)
	}
	// 11 requests spaced 20ms apart take at least 200ms.
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("11 requests at 50/s took %v", d)
	}
}

func TestCancellationIsPrompt(t *testing.T) {
	_, url := teacherServer(t, teacher.Options{Slow: 20 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, rep, err := Run(ctx, cfgFor(url, newMemo()), questions(10))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancellation took %v", d)
	}
	if rep.Sent != 0 || rep.NotSent != 10 {
		t.Fatalf("%+v", rep)
	}
}

func TestBadKeyStopsTheRun(t *testing.T) {
	s, url := teacherServer(t, teacher.Options{APIKey: "sk-right"})
	c := cfgFor(url, nil)
	c.APIKey = "sk-wrong"
	c.Concurrency = 2
	_, _, err := Run(context.Background(), c, questions(50))
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized: Incorrect API key") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "sk-wrong") {
		t.Fatalf("the error shows the key: %v", err)
	}
	if n := s.Stats().Requests; n > 4 {
		t.Fatalf("%d requests sent with a bad key", n)
	}
	c.APIKey = "sk-right"
	if _, _, err := Run(context.Background(), c, questions(2)); err != nil {
		t.Fatal(err)
	}
}

// TestPartialFailureKept: requests that keep failing fail the run, the
// others are stored, and the next run sends only the failed ones.
func TestPartialFailureKept(t *testing.T) {
	healthy := false
	var mu sync.Mutex
	tch := teacher.New(teacher.Options{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req struct{ Seed int64 }
		_ = json.Unmarshal(b, &req)
		mu.Lock()
		h := healthy
		mu.Unlock()
		if !h && req.Seed%4 == 0 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		tch.ServeHTTP(w, r)
	}))
	defer hs.Close()
	memo := newMemo()
	c := cfgFor(hs.URL+"/v1", memo)
	c.MaxAttempts = 3
	_, rep, err := Run(context.Background(), c, questions(20))
	if err == nil || !strings.Contains(err.Error(), "5 of 20 requests failed") || !strings.Contains(err.Error(), "502 Bad Gateway") {
		t.Fatalf("err = %v", err)
	}
	if rep.Sent != 15 || rep.Failed != 5 || rep.Retries != 10 {
		t.Fatalf("%+v", rep)
	}
	mu.Lock()
	healthy = true
	mu.Unlock()
	_, rep2, err := Run(context.Background(), c, questions(20))
	if err != nil || rep2.Sent != 5 || rep2.Reused != 15 || tch.Stats().Duplicates != 0 {
		t.Fatalf("%+v, %v", rep2, err)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{
		"600/min": {600, time.Minute}, "10/s": {10, time.Second}, " 5 / second ": {5, time.Second},
		"36000/hour": {36000, time.Hour}, "1000/day": {1000, 24 * time.Hour},
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "600", "x/min", "0/min", "-1/s", "10/fortnight", "1.5/s"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) succeeded", in)
		}
	}
}

// An attempt that may have been billed without an answer (the connection
// dropped after the request went out) is charged at its worst case, and a
// retry needs budget of its own: max_cost holds even against an API that
// bills what it did not deliver.
func TestBudgetCountsMaybeBilledAttempts(t *testing.T) {
	s, url := teacherServer(t, teacher.Options{Drop: 1})
	c := cfgFor(url, newMemo())
	c.Price = Price{InputPerMTok: 1000, OutputPerMTok: 1000}
	c.MaxAttempts = 6
	c.MinBackoff, c.MaxBackoff = time.Millisecond, time.Millisecond
	reqs := questions(1)
	worst := c.worst(reqs[0])
	c.MaxCost = 2.5 * worst
	_, rep, err := Run(context.Background(), c, reqs)
	if err == nil || !strings.Contains(err.Error(), "max_cost") {
		t.Fatalf("err = %v, want the budget to stop the retries", err)
	}
	if got := s.Stats().ByStatus["dropped"]; got != 2 {
		t.Errorf("%d attempts reached the server, want 2 (each may have cost %g of %g)", got, worst, c.MaxCost)
	}
	if rep.Sent != 0 || rep.NotSent != 1 {
		t.Errorf("report %+v", rep)
	}
}
