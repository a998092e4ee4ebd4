// Package apigen sends many chat-completion requests to an
// OpenAI-compatible API the way a paid API must be used: every answer is
// stored (through a Memo) the moment it arrives, so an interrupted or partly
// failed run keeps what it paid for and the next run sends only what is
// missing; with bounded concurrency, a rate limit, retries with exponential
// backoff and jitter (honouring Retry-After), and a budget that stops before
// overspending.
package apigen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is one chat completion to obtain.
type Request struct {
	// ID names the request's row ("questions/coding/hard/17"). It is part of
	// the memo key, so two rows asking the same thing keep separate answers.
	ID       string
	Messages []Message
	// Seed is sent as the request's "seed": real APIs vary their answers by
	// it, deterministic servers reproduce them.
	Seed int64
}

// Price is what an API charges, in dollars per million tokens.
type Price struct {
	InputPerMTok  float64 `json:"input_per_mtok"`
	OutputPerMTok float64 `json:"output_per_mtok"`
}

// Cost is the price of a request's tokens.
func (p Price) Cost(in, out int64) float64 {
	return (float64(in)*p.InputPerMTok + float64(out)*p.OutputPerMTok) / 1e6
}

// Memo stores answers durably (rules.Memo satisfies it).
type Memo interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, value []byte) error
}

// Config is one run's API, limits and bookkeeping.
type Config struct {
	// Name labels progress lines ("//data:questions").
	Name string
	// Endpoint is the API's base URL; requests go to Endpoint + "/chat/completions".
	Endpoint string
	Model    string
	// APIKey is sent as a Bearer token; it never enters a memo key or a log.
	APIKey string
	// Params are extra request fields (temperature, max_tokens, top_p).
	Params map[string]any
	Price  Price
	// MaxCost in dollars (0: none). A request is sent only if the money spent
	// plus the worst case of every request in flight, its own included,
	// stays within it; the worst case counts max_tokens of output.
	MaxCost float64
	// Concurrency bounds requests in flight (default 4).
	Concurrency int
	// Rate limits requests sent, retries included (zero: none).
	Rate Rate
	// MaxAttempts bounds the attempts of one request (default 6).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// attempts (default 500ms and 30s); a Retry-After is honoured up to
	// MaxRetryAfter (default 5 minutes).
	MinBackoff, MaxBackoff, MaxRetryAfter time.Duration
	// Timeout bounds one attempt (default 5 minutes).
	Timeout time.Duration
	// HTTP is the client (default: a client with no overall timeout).
	HTTP *http.Client
	// Memo keeps answers; nil keeps nothing across runs.
	Memo Memo
	// Log receives progress lines and warnings (nil: none).
	Log io.Writer
	// ProgressEvery is the interval of progress lines (default 5s).
	ProgressEvery time.Duration
}

// Usage is what the API reports a request consumed.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

// Answer is the outcome of one request.
type Answer struct {
	Content      string
	FinishReason string
	Usage        Usage
	// Reused: the answer came from the memo; nothing was sent.
	Reused bool
	// Err is why there is no answer (Content is then empty).
	Err error
}

// Report sums up a run.
type Report struct {
	Endpoint string `json:"endpoint"`
	Model    string `json:"model"`
	// Requests is every request of the run; Reused + Sent + Failed + NotSent == Requests.
	Requests int `json:"requests"`
	Reused   int `json:"reused"`
	Sent     int `json:"sent"`
	Failed   int `json:"failed"`
	NotSent  int `json:"not_sent"`
	// Attempts counts HTTP requests made; Retries those after a first.
	Attempts  int     `json:"attempts"`
	Retries   int     `json:"retries"`
	TokensIn  int64   `json:"tokens_in"`
	TokensOut int64   `json:"tokens_out"`
	Cost      float64 `json:"cost"`
	// ReusedCost is what the reused answers cost when they were bought,
	// for ReusedTokensIn and ReusedTokensOut.
	ReusedCost      float64 `json:"reused_cost"`
	ReusedTokensIn  int64   `json:"reused_tokens_in"`
	ReusedTokensOut int64   `json:"reused_tokens_out"`
	MaxCost         float64 `json:"max_cost,omitempty"`
	Seconds         float64 `json:"seconds"`
}

// Key is the memo key of a request: a canonical JSON of everything the
// answer depends on (endpoint, model, messages, parameters, the row's id
// and seed), never the API key.
func (c *Config) Key(r Request) string {
	b, err := json.Marshal(struct {
		V        int            `json:"v"`
		Endpoint string         `json:"endpoint"`
		Model    string         `json:"model"`
		Messages []Message      `json:"messages"`
		Params   map[string]any `json:"params"`
		ID       string         `json:"id"`
		Seed     int64          `json:"seed"`
	}{2, strings.TrimRight(c.Endpoint, "/"), c.Model, r.Messages, c.Params, r.ID, r.Seed})
	if err != nil {
		// Params came from JSON-compatible values; this cannot happen.
		panic(fmt.Sprintf("apigen: encoding a request key: %v", err))
	}
	return string(b)
}

// maxOut is the request's bound on output tokens (0: none).
func (c *Config) maxOut() int64 {
	for _, k := range []string{"max_tokens", "max_completion_tokens"} {
		switch v := c.Params[k].(type) {
		case float64:
			return int64(v)
		case int:
			return int64(v)
		case int64:
			return v
		case json.Number:
			n, _ := v.Int64()
			return n
		}
	}
	return 0
}

// EstimateInput bounds a request's input tokens from above: one token per
// byte (byte-level BPE and byte-fallback tokenizers never make a token of
// less than one byte; English runs about four bytes a token), plus the
// framing chat APIs add per message, so a budget holds for any text.
func EstimateInput(msgs []Message) int64 {
	n := int64(3)
	for _, m := range msgs {
		n += 4 + int64(len(m.Content))
	}
	return n
}

// worst is the most a request can cost.
func (c *Config) worst(r Request) float64 {
	return c.Price.Cost(EstimateInput(r.Messages), c.maxOut())
}

func (c *Config) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 6
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = 5 * time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.HTTP == nil {
		// No redirects: Go would resend the Authorization header to the
		// new address (even https -> http on the same host); a redirect is
		// answered as an error instead.
		c.HTTP = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 5 * time.Second
	}
}

// errFatal marks an answer the API gives to every request alike (a bad
// key, an unknown model): the run stops at once instead of repeating it.
type errFatal struct{ err error }

func (e errFatal) Error() string { return e.err.Error() }
func (e errFatal) Unwrap() error { return e.err }

// run is the shared state of one Run.
type run struct {
	cfg    Config
	bucket *bucket
	budget *budget
	cancel context.CancelFunc

	mu                 sync.Mutex
	rep                Report
	done               int
	firstErr, fatalErr error
	memoWarned         bool
	attempts           atomic.Int64
}

// Run obtains the answers of reqs, in order. Answers already in the memo
// are reused; every other answer is stored in the memo as soon as it
// arrives. The error says what is missing and why (failures, budget,
// cancellation); the answers obtained are returned and stored either way.
func Run(ctx context.Context, cfg Config, reqs []Request) ([]Answer, Report, error) {
	cfg.defaults()
	started := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &run{cfg: cfg, bucket: newBucket(cfg.Rate), budget: &budget{max: cfg.MaxCost}, cancel: cancel}
	r.rep = Report{Endpoint: cfg.Endpoint, Model: cfg.Model, Requests: len(reqs), MaxCost: cfg.MaxCost}
	answers := make([]Answer, len(reqs))

	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	progressDone.Add(1)
	go func() {
		defer progressDone.Done()
		t := time.NewTicker(cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.progress(started, "progress")
			case <-stopProgress:
				return
			}
		}
	}()

	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				answers[i] = r.one(ctx, reqs[i])
				r.record(answers[i])
			}
		}()
	}
feed:
	for i := range reqs {
		select {
		case next <- i:
		case <-ctx.Done():
			for j := i; j < len(reqs); j++ {
				answers[j] = Answer{Err: ctx.Err()}
				r.record(answers[j])
			}
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(stopProgress)
	progressDone.Wait()

	r.rep.Attempts = int(r.attempts.Load())
	r.rep.Seconds = time.Since(started).Seconds()
	r.progress(started, "done")
	return answers, r.rep, r.err(ctx)
}

// err explains what is missing, if anything.
func (r *run) err(ctx context.Context) error {
	rep := r.rep
	got := rep.Reused + rep.Sent
	kept := fmt.Sprintf("the %d answers obtained are kept in the cache, and the next build sends only the %d missing requests", got, rep.Requests-got)
	spent, stopped := r.budget.get()
	switch {
	case r.fatalErr != nil:
		return fmt.Errorf("%w; %s", r.fatalErr, kept)
	case stopped:
		if spent > rep.Cost+1e-12 {
			// Attempts that may have been billed without an answer count at
			// their worst case: say how much of spent is that.
			return fmt.Errorf("max_cost $%.4f reached: spent $%.4f on answers and up to $%.4f on attempts that got none (dropped or timed out), %d requests not sent; %s",
				r.cfg.MaxCost, rep.Cost, spent-rep.Cost, rep.NotSent, kept)
		}
		return fmt.Errorf("max_cost $%.4f reached: spent $%.4f, %d requests not sent (sending them could overspend: each may cost up to $%.4f with max_tokens %d); %s",
			r.cfg.MaxCost, spent, rep.NotSent, r.cfg.Price.Cost(0, r.cfg.maxOut()), r.cfg.maxOut(), kept)
	case ctx.Err() != nil && got < rep.Requests:
		return fmt.Errorf("interrupted: %w; %s", ctx.Err(), kept)
	case rep.Failed > 0:
		return fmt.Errorf("%d of %d requests failed (first: %v); %s", rep.Failed, rep.Requests, r.firstErr, kept)
	}
	return nil
}

func (r *run) record(a Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done++
	switch {
	case a.Err == nil && a.Reused:
		r.rep.Reused++
		r.rep.ReusedCost += r.cfg.Price.Cost(a.Usage.PromptTokens, a.Usage.CompletionTokens)
		r.rep.ReusedTokensIn += a.Usage.PromptTokens
		r.rep.ReusedTokensOut += a.Usage.CompletionTokens
	case a.Err == nil:
		r.rep.Sent++
		r.rep.TokensIn += a.Usage.PromptTokens
		r.rep.TokensOut += a.Usage.CompletionTokens
		r.rep.Cost += r.cfg.Price.Cost(a.Usage.PromptTokens, a.Usage.CompletionTokens)
	case errors.Is(a.Err, errNotSent) || errors.Is(a.Err, context.Canceled) || errors.Is(a.Err, context.DeadlineExceeded):
		r.rep.NotSent++
	default:
		r.rep.Failed++
		if r.firstErr == nil {
			r.firstErr = a.Err
		}
		var f errFatal
		if errors.As(a.Err, &f) && r.fatalErr == nil {
			r.fatalErr = a.Err
			r.cancel()
		}
	}
}

func (r *run) progress(started time.Time, what string) {
	r.mu.Lock()
	rep, done := r.rep, r.done
	r.mu.Unlock()
	budget := ""
	if r.cfg.MaxCost > 0 {
		budget = fmt.Sprintf(" of max $%.2f", r.cfg.MaxCost)
	}
	fmt.Fprintf(r.cfg.Log, "%s: %d/%d requests (%d reused, %d sent, %d failed, %d not sent), %d retries, tokens %d in / %d out, cost $%.4f%s, %.1fs\n",
		what, done, rep.Requests, rep.Reused, rep.Sent, rep.Failed, rep.NotSent, rep.Retries,
		rep.TokensIn, rep.TokensOut, rep.Cost, budget, time.Since(started).Seconds())
}

var errNotSent = errors.New("not sent: the budget could be exceeded")

// one obtains one answer: from the memo, else from the API.
func (r *run) one(ctx context.Context, req Request) Answer {
	if err := ctx.Err(); err != nil {
		return Answer{Err: err}
	}
	key := r.cfg.Key(req)
	if r.cfg.Memo != nil {
		b, ok, err := r.cfg.Memo.Get(ctx, key)
		if err != nil {
			r.warnMemo(fmt.Errorf("reading a cached answer: %w", err))
		}
		if ok {
			if a, err := parseResponse(b); err == nil {
				a.Reused = true
				return a
			}
			r.warnMemo(fmt.Errorf("a cached answer does not parse; asking the API again"))
		}
	}
	worst := r.cfg.worst(req)
	if !r.budget.reserve(worst) {
		return Answer{Err: errNotSent}
	}
	a, body, retries := r.send(ctx, req, worst)
	r.mu.Lock()
	r.rep.Retries += retries
	r.mu.Unlock()
	cost := 0.0
	if a.Err == nil {
		cost = r.cfg.Price.Cost(a.Usage.PromptTokens, a.Usage.CompletionTokens)
	}
	r.budget.settle(worst, cost)
	if a.Err == nil && r.cfg.Memo != nil {
		// Stored with a context of its own: an answer that arrived is paid
		// for, so it is kept even when the run is being cancelled.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		if err := r.cfg.Memo.Put(pctx, key, body); err != nil {
			r.warnMemo(fmt.Errorf("storing an answer: %w (it is used now but will be asked again next time)", err))
		}
		cancel()
	}
	return a
}

func (r *run) warnMemo(err error) {
	r.mu.Lock()
	first := !r.memoWarned
	r.memoWarned = true
	r.mu.Unlock()
	if first {
		fmt.Fprintf(r.cfg.Log, "warning: %v\n", err)
	}
}
