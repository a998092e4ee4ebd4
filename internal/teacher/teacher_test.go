package teacher

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, url, key, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %s", resp.Status, b)
	}
	return resp, m
}

func content(m map[string]any) string {
	return m["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"].(string)
}

func TestAnswersByCue(t *testing.T) {
	hs := httptest.NewServer(New(Options{}))
	defer hs.Close()
	for prompt, want := range map[string]string{
		"Write one hard coding question.":              "Implement ",
		"Write one easy math question.":                "What is ",
		"Answer step by step: What is 3 + 4 * 5?":      "Final answer: 23",
		"Answer briefly: What is 3 + 4 * 5?":           "the result is 23",
		"Score this question from 1 to 10: Why?":       "\nScore: ",
		"Please write a summarisation question, easy.": "Summarise an article",
	} {
		_, m := post(t, hs.URL, "", `{"model":"m","seed":7,"messages":[{"role":"user","content":`+quote(prompt)+`}]}`)
		if c := content(m); !strings.Contains(c, want) {
			t.Errorf("%q: %q, want %q in it", prompt, c, want)
		}
	}
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestDeterministicAndUsage(t *testing.T) {
	hs := httptest.NewServer(New(Options{}))
	defer hs.Close()
	body := func(seed string) string {
		return `{"model":"m","seed":` + seed + `,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"Write one hard tool use question."}]}`
	}
	_, a := post(t, hs.URL, "", body("1"))
	_, b := post(t, hs.URL, "", body("1"))
	if content(a) != content(b) {
		t.Fatal("the same request got two answers")
	}
	distinct := map[string]bool{}
	for _, s := range []string{"2", "3", "4", "5", "6", "7"} {
		_, m := post(t, hs.URL, "", body(s))
		distinct[content(m)] = true
	}
	if len(distinct) < 3 {
		t.Fatalf("six seeds gave %d answers", len(distinct))
	}
	u := a["usage"].(map[string]any)
	if int(u["completion_tokens"].(float64)) != Tokens(content(a)) || u["prompt_tokens"].(float64) != float64(3+4+Tokens("be brief")+4+Tokens("Write one hard tool use question.")) ||
		u["total_tokens"].(float64) != u["prompt_tokens"].(float64)+u["completion_tokens"].(float64) {
		t.Fatalf("usage %v for %q", u, content(a))
	}
	_, c := post(t, hs.URL, "", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"Answer step by step: why?"}]}`)
	ch := c["choices"].([]any)[0].(map[string]any)
	if ch["finish_reason"] != "length" || Tokens(content(c)) > 5 {
		t.Fatalf("max_tokens 5: %v", ch)
	}
}

func TestErrorsInOpenAIShape(t *testing.T) {
	s := New(Options{APIKey: "sk-1"})
	hs := httptest.NewServer(s)
	defer hs.Close()
	resp, m := post(t, hs.URL, "sk-2", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 401 || m["error"].(map[string]any)["code"] != "invalid_api_key" {
		t.Fatalf("%s %v", resp.Status, m)
	}
	resp, m = post(t, hs.URL, "sk-1", `{"model":"m","messages":[]}`)
	if resp.StatusCode != 400 || m["error"].(map[string]any)["type"] != "invalid_request_error" {
		t.Fatalf("%s %v", resp.Status, m)
	}
	r, err := http.Get(hs.URL + "/v1/models")
	if err != nil || r.StatusCode != 200 {
		t.Fatal(err)
	}
	r.Body.Close()
	if st := s.Stats(); st.ByStatus["401"] != 1 || st.ByStatus["400"] != 1 || st.Requests != 2 {
		t.Fatalf("%+v", st)
	}
}

// Faults depend on the request and its attempt number only: two servers
// with the same options fail the same attempts.
func TestFaultsReproducible(t *testing.T) {
	seq := func() string {
		hs := httptest.NewServer(New(Options{Fail429: 0.3, Fail500: 0.2, Drop: 0.1, RetryAfter: 2 * time.Second}))
		defer hs.Close()
		var out bytes.Buffer
		for i := 0; i < 40; i++ {
			body := `{"model":"m","seed":` + string(rune('0'+i%10)) + `,"messages":[{"role":"user","content":"Write a question."}]}`
			resp, m := post(t, hs.URL, "", body)
			switch {
			case resp == nil:
				out.WriteString("D")
			case resp.StatusCode == 429:
				if resp.Header.Get("Retry-After") != "2" {
					t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
				}
				out.WriteString("R")
			case resp.StatusCode == 500:
				if m["error"].(map[string]any)["type"] != "server_error" {
					t.Fatalf("%v", m)
				}
				out.WriteString("E")
			default:
				out.WriteString(".")
			}
		}
		return out.String()
	}
	a, b := seq(), seq()
	if a != b || !strings.Contains(a, "D") || !strings.Contains(a, "R") || !strings.Contains(a, "E") || !strings.Contains(a, ".") {
		t.Fatalf("%s vs %s", a, b)
	}
}
