package apigen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cogumi/cogumi/internal/retry"
)

// maxBody bounds a response read into memory.
const maxBody = 16 << 20

// send posts req until it is answered, fails for good, or runs out of
// attempts. It returns the answer, the raw response body (what the memo
// keeps) and the number of retries.
//
// worst is reserved in the budget for the first attempt. An attempt that
// may have been billed without an answer (a timeout or a connection lost
// after the request went out, a 200 that is not a completion) is charged at
// worst, and the next attempt needs a reservation of its own: max_cost then
// holds even against an API that bills what it could not deliver.
func (r *run) send(ctx context.Context, req Request, worst float64) (Answer, []byte, int) {
	body, err := r.body(req)
	if err != nil {
		return Answer{Err: err}, nil, 0
	}
	url := strings.TrimRight(r.cfg.Endpoint, "/") + "/chat/completions"
	var last error
	for attempt := 1; attempt <= r.cfg.MaxAttempts; attempt++ {
		if err := r.bucket.wait(ctx); err != nil {
			return Answer{Err: err}, nil, attempt - 1
		}
		r.attempts.Add(1)
		a, raw, wait, err := r.attempt(ctx, url, body)
		if err == nil {
			return a, raw, attempt - 1
		}
		if attempt < r.cfg.MaxAttempts && maybeBilled(err) && ctx.Err() == nil {
			if !r.budget.recharge(worst) {
				return Answer{Err: errNotSent}, nil, attempt - 1
			}
		}
		if ctx.Err() != nil {
			return Answer{Err: ctx.Err()}, nil, attempt - 1
		}
		var f errFatal
		if errors.As(err, &f) || wait < 0 {
			return Answer{Err: err}, nil, attempt - 1
		}
		last = err
		if attempt == r.cfg.MaxAttempts {
			break
		}
		if wait == 0 {
			wait = retry.Backoff(attempt, r.cfg.MinBackoff, r.cfg.MaxBackoff)
		}
		if err := retry.Sleep(ctx, wait); err != nil {
			return Answer{Err: ctx.Err()}, nil, attempt - 1
		}
	}
	return Answer{Err: fmt.Errorf("%w (gave up after %d attempts)", last, r.cfg.MaxAttempts)}, nil, r.cfg.MaxAttempts - 1
}

func (r *run) body(req Request) ([]byte, error) {
	m := make(map[string]any, len(r.cfg.Params)+3)
	for k, v := range r.cfg.Params {
		m[k] = v
	}
	m["model"] = r.cfg.Model
	m["messages"] = req.Messages
	m["seed"] = req.Seed
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding the request: %w", err)
	}
	return b, nil
}

// billedUnknown marks an attempt's error when the request may have reached
// the API and been billed although no answer came back.
type billedUnknown struct{ error }

func (e billedUnknown) Unwrap() error { return e.error }

func maybeBilled(err error) bool {
	var b billedUnknown
	return errors.As(err, &b)
}

// attempt makes one HTTP request. On failure, wait says what to do: < 0
// do not retry, 0 back off, > 0 wait that long (the server's Retry-After).
func (r *run) attempt(ctx context.Context, url string, body []byte) (Answer, []byte, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Answer{}, nil, -1, errFatal{fmt.Errorf("endpoint %q: %w", r.cfg.Endpoint, err)}
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	if r.cfg.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+r.cfg.APIKey)
	}
	resp, err := r.cfg.HTTP.Do(hreq)
	if err != nil {
		// Connection refused or reset, a dropped connection, a timeout: the
		// request may not have reached the API; try again. Unless the
		// connection was refused, it may also have been billed.
		err = fmt.Errorf("POST %s: %w", url, err)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			err = billedUnknown{err}
		}
		return Answer{}, nil, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Answer{}, nil, 0, billedUnknown{fmt.Errorf("POST %s: reading the response: %w", url, err)}
	}
	if resp.StatusCode != http.StatusOK {
		msg := apiMessage(raw)
		if r.cfg.APIKey != "" {
			// A proxy echoing the request's headers must not put the key
			// into errors, logs and events.
			msg = strings.ReplaceAll(msg, r.cfg.APIKey, "[API key]")
		}
		err := fmt.Errorf("POST %s: %s%s", url, resp.Status, msg)
		switch {
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout ||
			resp.StatusCode == http.StatusConflict || resp.StatusCode >= 500:
			return Answer{}, nil, r.retryAfter(resp.Header.Get("Retry-After")), err
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
			resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusPaymentRequired:
			// The same for every request: stop the run rather than repeat it.
			return Answer{}, nil, -1, errFatal{err}
		}
		return Answer{}, nil, -1, err
	}
	a, err := parseResponse(raw)
	if err != nil {
		// A 200 that is not a chat completion: a proxy's error page, a cut
		// body. Not an answer; ask again (it may have been billed).
		return Answer{}, nil, 0, billedUnknown{fmt.Errorf("POST %s: %w", url, err)}
	}
	return a, raw, 0, nil
}

// retryAfter reads a Retry-After header: seconds or an HTTP date. 0 when
// absent or unreadable (back off instead).
func (r *run) retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseFloat(h, 64); err == nil {
		d = time.Duration(s * float64(time.Second))
	} else if t, err := http.ParseTime(h); err == nil {
		d = time.Until(t)
	} else {
		return 0
	}
	if d <= 0 {
		return time.Millisecond
	}
	if d > r.cfg.MaxRetryAfter {
		d = r.cfg.MaxRetryAfter
	}
	// Up to 10% more, so that requests told the same moment do not all
	// come back at once.
	return d + rand.N(d/10+1)
}

// apiMessage extracts the message of an OpenAI-shaped error body.
func apiMessage(raw []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		return ": " + e.Error.Message
	}
	s := strings.TrimSpace(string(raw))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return ""
	}
	return ": " + s
}

// parseResponse reads a chat completion.
func parseResponse(raw []byte) (Answer, error) {
	var resp struct {
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage *Usage `json:"usage"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return Answer{}, fmt.Errorf("the response is not a chat completion: %w", err)
	}
	if len(resp.Choices) == 0 || resp.Choices[0].Message.Content == nil {
		return Answer{}, errors.New("the response has no choices[0].message.content")
	}
	a := Answer{Content: *resp.Choices[0].Message.Content, FinishReason: resp.Choices[0].FinishReason}
	if resp.Usage != nil {
		a.Usage = *resp.Usage
	}
	return a, nil
}
