// Package teacher is a local stand-in for a paid teacher-model API: an
// OpenAI-compatible chat-completions server that answers deterministically
// from seeded, per-domain templates, reports token usage as real APIs do,
// and can be told to fail some requests (429 with Retry-After, 500, dropped
// connections) so tests prove that a client loses nothing and pays nothing
// twice. It serves
//
//	POST /v1/chat/completions   the OpenAI request and response shapes
//	GET  /v1/models             the models it answers for (any name works)
//	GET  /stats                 what it received, per status (JSON)
package teacher

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The fault rates are fractions in [0, 1]; each
// request's fate is decided by the hash of the request and the number of
// times the server has seen that same request, so a run is reproducible.
type Options struct {
	// APIKey, when set, is required as "Authorization: Bearer <key>".
	APIKey string
	// Fail429 is the fraction of attempts answered 429 with Retry-After.
	Fail429 float64
	// RetryAfter is the Retry-After given with a 429 (whole seconds, at least 1).
	RetryAfter time.Duration
	// Fail500 is the fraction of attempts answered 500.
	Fail500 float64
	// Drop is the fraction of attempts whose connection is closed without an answer.
	Drop float64
	// Slow delays every answer.
	Slow time.Duration
	// Models lists the models /v1/models reports; any model name is answered.
	Models []string
}

// Flags registers the options as command-line flags of fs (shared by
// cogumi-teacher and the test scenarios' teacher command).
func (o *Options) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.APIKey, "api-key", o.APIKey, "require this key as a Bearer token")
	fs.Float64Var(&o.Fail429, "fail-429", o.Fail429, "fraction of attempts answered 429 with Retry-After")
	fs.DurationVar(&o.RetryAfter, "retry-after", max(o.RetryAfter, time.Second), "the Retry-After of a 429 (whole seconds)")
	fs.Float64Var(&o.Fail500, "fail-500", o.Fail500, "fraction of attempts answered 500")
	fs.Float64Var(&o.Drop, "drop", o.Drop, "fraction of attempts whose connection is closed without an answer")
	fs.DurationVar(&o.Slow, "slow", o.Slow, "delay before every answer")
}

// Validate checks the fault rates.
func (o Options) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"fail-429", o.Fail429}, {"fail-500", o.Fail500}, {"drop", o.Drop}} {
		if f.v < 0 || f.v > 1 {
			return fmt.Errorf("%s %g: give a fraction in [0, 1]", f.name, f.v)
		}
	}
	if o.Fail429+o.Fail500+o.Drop > 1 {
		return fmt.Errorf("fail-429, fail-500 and drop add up to more than 1")
	}
	if o.Slow < 0 {
		return fmt.Errorf("slow %v: give a positive duration", o.Slow)
	}
	return nil
}

// Server is the teacher's http.Handler. Use New.
type Server struct {
	mux *http.ServeMux

	mu       sync.Mutex
	opts     Options
	stats    Stats
	attempts map[[32]byte]int // times each distinct request was received
	answered map[[32]byte]int // times each distinct request was answered 200
	inFlight int
}

// Stats is what /stats reports.
type Stats struct {
	// Requests counts chat-completion requests received.
	Requests int `json:"requests"`
	// ByStatus counts them by outcome: "200", "429", "500", "400", "401", "dropped".
	ByStatus map[string]int `json:"by_status"`
	// Distinct counts distinct requests answered 200.
	Distinct int `json:"distinct"`
	// Duplicates counts 200 answers to a request already answered 200: what a
	// client with a working cache never causes.
	Duplicates int `json:"duplicates"`
	// PromptTokens and CompletionTokens sum the usage of 200 answers.
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	// MaxInFlight is the most chat-completion requests handled at once.
	MaxInFlight int `json:"max_in_flight"`
}

// New returns a teacher server.
func New(opts Options) *Server {
	s := &Server{
		mux:      http.NewServeMux(),
		stats:    Stats{ByStatus: map[string]int{}},
		attempts: map[[32]byte]int{},
		answered: map[[32]byte]int{},
	}
	s.SetOptions(opts)
	s.mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.mux.HandleFunc("GET /v1/models", s.models)
	s.mux.HandleFunc("GET /stats", s.statsHandler)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url",
			fmt.Sprintf("Unknown request URL: %s %s. Use POST /v1/chat/completions.", r.Method, r.URL.Path))
	})
	return s
}

// SetOptions changes the options of a running server (a test turns its
// faults off between two builds); its counters carry on.
func (s *Server) SetOptions(o Options) {
	if o.RetryAfter < time.Second {
		o.RetryAfter = time.Second
	}
	s.mu.Lock()
	s.opts = o
	s.mu.Unlock()
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByStatus = make(map[string]int, len(s.stats.ByStatus))
	for k, v := range s.stats.ByStatus {
		st.ByStatus[k] = v
	}
	return st
}

// ChatRequest is the part of OpenAI's request the teacher reads.
type ChatRequest struct {
	Model       string    `json:"model"`
	Messages    []Message `json:"messages"`
	MaxTokens   *int      `json:"max_tokens,omitempty"`
	Temperature *float64  `json:"temperature,omitempty"`
	Seed        *int64    `json:"seed,omitempty"`
}

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	opts := s.opts
	s.stats.Requests++
	s.inFlight++
	if s.inFlight > s.stats.MaxInFlight {
		s.stats.MaxInFlight = s.inFlight
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	if opts.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+opts.APIKey {
		s.count("401")
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
			"Incorrect API key provided. You can find your API key in your account settings.")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		s.count("400")
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "reading the request body: "+err.Error())
		return
	}
	var req ChatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.count("400")
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request: "+err.Error())
		return
	}
	if msg := validate(req); msg != "" {
		s.count("400")
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", msg)
		return
	}
	h := requestHash(req)
	s.mu.Lock()
	attempt := s.attempts[h]
	s.attempts[h]++
	s.mu.Unlock()

	if opts.Slow > 0 {
		select {
		case <-time.After(opts.Slow):
		case <-r.Context().Done():
			s.count("cancelled")
			return
		}
	}
	// One uniform draw per attempt decides its fate: drop, 429, 500 or answer.
	u := draw(h, attempt)
	switch {
	case u < opts.Drop:
		s.count("dropped")
		drop(w)
		return
	case u < opts.Drop+opts.Fail429:
		s.count("429")
		w.Header().Set("Retry-After", strconv.Itoa(int(opts.RetryAfter/time.Second)))
		writeError(w, http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded",
			"Rate limit reached for requests. Please try again later.")
		return
	case u < opts.Drop+opts.Fail429+opts.Fail500:
		s.count("500")
		writeError(w, http.StatusInternalServerError, "server_error", "",
			"The server had an error while processing your request. Sorry about that!")
		return
	}

	content, finish := Answer(req)
	in, out := promptTokens(req.Messages), Tokens(content)
	resp := map[string]any{
		"id":                 fmt.Sprintf("chatcmpl-%x", h[:12]),
		"object":             "chat.completion",
		"created":            time.Now().Unix(),
		"model":              req.Model,
		"system_fingerprint": "cogumi-teacher-1",
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": content},
			"finish_reason": finish,
		}},
		"usage": map[string]any{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out},
	}
	s.mu.Lock()
	s.stats.ByStatus["200"]++
	s.answered[h]++
	if s.answered[h] == 1 {
		s.stats.Distinct++
	} else {
		s.stats.Duplicates++
	}
	s.stats.PromptTokens += int64(in)
	s.stats.CompletionTokens += int64(out)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func validate(req ChatRequest) string {
	switch {
	case req.Model == "":
		return "you must provide a model parameter"
	case len(req.Messages) == 0:
		return "'messages' must contain at least one message"
	case req.MaxTokens != nil && *req.MaxTokens < 1:
		return fmt.Sprintf("max_tokens %d: must be at least 1", *req.MaxTokens)
	}
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "user", "assistant", "developer":
		default:
			return fmt.Sprintf("messages[%d].role %q: expected system, user or assistant", i, m.Role)
		}
	}
	return ""
}

func (s *Server) count(status string) {
	s.mu.Lock()
	s.stats.ByStatus[status]++
	s.mu.Unlock()
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	names := append([]string(nil), s.opts.Models...)
	s.mu.Unlock()
	if len(names) == 0 {
		names = []string{"teacher-small", "teacher-large"}
	}
	sort.Strings(names)
	data := make([]any, len(names))
	for i, n := range names {
		data[i] = map[string]any{"id": n, "object": "model", "created": 0, "owned_by": "cogumi-teacher"}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) statsHandler(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

// requestHash identifies a request by what decides its answer.
func requestHash(req ChatRequest) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "model %q\n", req.Model)
	for _, m := range req.Messages {
		fmt.Fprintf(h, "message %q %q\n", m.Role, m.Content)
	}
	if req.Seed != nil {
		fmt.Fprintf(h, "seed %d\n", *req.Seed)
	}
	if req.MaxTokens != nil {
		fmt.Fprintf(h, "max_tokens %d\n", *req.MaxTokens)
	}
	if req.Temperature != nil {
		fmt.Fprintf(h, "temperature %g\n", *req.Temperature)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// draw is a uniform number in [0, 1) fixed by the request and the attempt.
func draw(h [32]byte, attempt int) float64 {
	sum := sha256.Sum256(append(h[:], byte(attempt), byte(attempt>>8), 'f'))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
}

// drop closes the connection without an answer, as a crashed proxy does.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // net/http closes the connection
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers in OpenAI's error shape.
func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	var c any
	if code != "" {
		c = code
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": c}})
}

// Tokens is the teacher's token count of a text: one token per 4 bytes,
// rounded up, as OpenAI's rule of thumb for English; at least 1 for any
// non-empty text.
func Tokens(s string) int {
	return (len(s) + 3) / 4
}

// promptTokens counts a request's messages as chat APIs do: each message's
// content plus a few tokens of framing, plus the reply's priming.
func promptTokens(ms []Message) int {
	n := 3
	for _, m := range ms {
		n += 4 + Tokens(m.Content)
	}
	return n
}

// truncateTokens cuts content to at most max tokens, at a word boundary
// where there is one.
func truncateTokens(content string, max int) (string, bool) {
	if Tokens(content) <= max {
		return content, false
	}
	cut := content[:max*4]
	if i := strings.LastIndexAny(cut, " \n"); i > len(cut)/2 {
		cut = cut[:i]
	}
	return cut, true
}
