package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/cogumi/cogumi/data/apigen"
	"github.com/cogumi/cogumi/data/rowexpr"
	"github.com/cogumi/cogumi/engine/target"
)

// Generate asks an OpenAI-compatible chat-completions API for one answer
// per row, and writes the rows with their answers:
//
//	generate "questions" {
//	  endpoint    = "https://api.deepseek.com/v1"
//	  model       = "deepseek-chat"
//	  api_key_env = "DEEPSEEK_API_KEY"
//	  prompt      = file("prompts/question.tmpl")   # a template over row: ${row.domain}
//	  for_each    = { domain = ["coding", "math"], difficulty = ["easy", "hard"] }
//	  count       = { easy = 4000, hard = 6000 }
//	  params      = { temperature = 0.9, max_tokens = 512 }
//	  price       = { input_per_mtok = 0.27, output_per_mtok = 1.10 }
//	  max_cost    = 50
//	}
//
// Rows come either from for_each (every combination of its value lists,
// count rows each; each row holds its values, "index" and "prompt_id") or
// from the JSONL artifact named by from, filtered by where. Every request's
// answer is a cache entry of its own (Action.Memo), stored as it arrives:
// a failed or interrupted build keeps what it paid for, and the next one
// sends only the missing requests. Its artifact is <name>.jsonl and
// report.json (requests, tokens and what the answers cost in all; what a
// run sent and reused goes to the build's events and summary).
type Generate struct{}

// Judge is Generate for scoring rows: it parses a number from each answer
// into field (default "score"); an answer without one gives null.
type Judge struct{}

func (Generate) Kind() string    { return "generate" }
func (Generate) Version() string { return "1" }
func (Generate) Schema() Schema {
	return genSchema("one answer per row from an OpenAI-compatible chat-completions API", attrsOf[generateParams]())
}
func (Generate) Check(t *target.Target) []AttrError {
	p, errs := decode[generateParams](t)
	if len(errs) > 0 {
		return errs
	}
	return genCheck(&p.genCommon, p.Field)
}
func (Generate) Outs(t *target.Target) []string { return genOuts(t) }
func (Generate) Execute(ctx context.Context, a *Action) error {
	p, err := decodeAction[generateParams](a)
	if err != nil {
		return err
	}
	return genExecute(ctx, a, &p.genCommon, p.Field, false)
}

func (Judge) Kind() string    { return "judge" }
func (Judge) Version() string { return "1" }
func (Judge) Schema() Schema {
	return genSchema("generate that parses a score from each answer into a field", attrsOf[judgeParams]())
}
func (Judge) Check(t *target.Target) []AttrError {
	p, errs := decode[judgeParams](t)
	if len(errs) > 0 {
		return errs
	}
	return genCheck(&p.genCommon, p.Field)
}
func (Judge) Outs(t *target.Target) []string { return genOuts(t) }
func (Judge) Execute(ctx context.Context, a *Action) error {
	p, err := decodeAction[judgeParams](a)
	if err != nil {
		return err
	}
	return genExecute(ctx, a, &p.genCommon, p.Field, true)
}

// genSchema is the schema of generate and judge: their outputs hold the
// target's name (<name>.jsonl, prompt ids), and they run long, reporting
// progress.
func genSchema(summary string, attrs []Attr) Schema {
	return Schema{Summary: summary, Attrs: attrs, Traits: Traits{LiveLog: true, UsesName: true}}
}

// genCommon are the attributes generate and judge share; each adds field,
// whose default differs.
type genCommon struct {
	Endpoint     string        `cogumi:"endpoint,key,required" doc:"base URL of an OpenAI-compatible API; requests go to {endpoint}/chat/completions"`
	Model        string        `cogumi:"model,key,required" doc:"the model the API is asked for"`
	APIKeyEnv    string        `cogumi:"api_key_env,nokey" doc:"the environment variable holding the API key, read when the build runs (the key is never stored)"`
	Prompt       *rowexpr.Expr `cogumi:"prompt,key,required,row=string" doc:"the user message: a template over the row (${row.domain}), e.g. file(\"prompts/q.tmpl\")"`
	System       *rowexpr.Expr `cogumi:"system,key,row=string" doc:"an optional system message, a template over the row"`
	From         string        `cogumi:"from,key,input=label" doc:"a JSONL file, or a target whose artifact holds one .jsonl file: one request per row"`
	Where        *rowexpr.Expr `cogumi:"where,key,row=bool" doc:"only rows for which this is true (row.difficulty == \"hard\")"`
	ForEach      cty.Value     `cogumi:"for_each,key,ordered" doc:"rows from value lists: { domain = [\"coding\", \"math\"], difficulty = [\"easy\", \"hard\"] }, every combination, the first dimension slowest"`
	ForEachOrder []string      `cogumi:"for_each.order,key" doc:"set by the loader: for_each's dimensions in the order written (they order the rows and prompt ids)"`
	Count        cty.Value     `cogumi:"count,key" doc:"rows per for_each combination: a number, or a map keyed by the values of one dimension ({ easy = 40, hard = 60 })"`
	Params       cty.Value     `cogumi:"params,key" doc:"request parameters sent as they are: { temperature = 0.9, max_tokens = 512 }"`
	Price        cty.Value     `cogumi:"price,key" doc:"dollars per million tokens: { input_per_mtok = 0.27, output_per_mtok = 1.10 }"`
	MaxCost      *float64      `cogumi:"max_cost,nokey" doc:"dollars this target may spend in one build; no request is sent that could take it over"`
	Concurrency  int           `cogumi:"concurrency,nokey" default:"4" doc:"requests in flight at once"`
	RateLimit    string        `cogumi:"rate_limit,nokey" doc:"requests per period, retries included: \"600/min\", \"10/s\""`
	MaxAttempts  int           `cogumi:"max_attempts,nokey" default:"6" doc:"attempts per request before it counts as failed"`
}

// generateParams are the attributes of a generate target.
type generateParams struct {
	genCommon
	Field string `cogumi:"field,key" default:"response" doc:"the output field holding the answer"`
}

// judgeParams are the attributes of a judge target.
type judgeParams struct {
	genCommon
	Field string `cogumi:"field,key" default:"score" doc:"the output field holding the score parsed from the answer"`
}

func genOuts(t *target.Target) []string { return []string{t.Label.Name + ".jsonl", "report.json"} }

// forbiddenParams are request fields the rule sets itself (or whose
// answers it could not read).
var forbiddenParams = map[string]string{
	"model": "use the model attribute", "messages": "use prompt and system", "seed": "each row gets its own seed",
	"stream": "the rule reads whole responses", "n": "the rule keeps one answer per row",
}

// reservedFields are row fields the rule writes.
var reservedFields = []string{"index", "prompt_id", "model", "judge_model"}

func genCheck(p *genCommon, field string) []AttrError {
	var errs []AttrError
	add := func(attr, f string, args ...any) {
		errs = append(errs, AttrError{Attr: attr, Msg: fmt.Sprintf(f, args...)})
	}
	hasFrom, hasEach, hasCount := p.From != "", !p.ForEach.IsNull(), !p.Count.IsNull()
	switch {
	case hasFrom == hasEach:
		add("", "give either from (one request per row of a JSONL artifact) or for_each (rows made from value lists)")
	case hasCount && !hasEach:
		add("count", "count applies to for_each rows; with from, every row (that where keeps) is one request")
	}
	if u, err := url.Parse(p.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("endpoint", "endpoint %q: give the API's base URL, e.g. \"https://api.openai.com/v1\"", p.Endpoint)
	} else if u.User != nil || u.RawQuery != "" {
		add("endpoint", "endpoint: put no credentials in the URL; name the variable holding the key with api_key_env")
	} else if u.Scheme == "http" && p.APIKeyEnv != "" && !isLoopback(u.Hostname()) {
		add("endpoint", "endpoint %q: the API key would cross the network in clear text over http://; use https:// (http is for 127.0.0.1 and localhost)", p.Endpoint)
	}
	if env := p.APIKeyEnv; env != "" && !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(env) {
		add("api_key_env", "api_key_env %q: give the name of an environment variable (not the key itself)", env)
	}
	dims, err := forEachDims(p.ForEach, p.ForEachOrder)
	if err != nil {
		add("for_each", "%v", err)
	}
	for _, d := range dims {
		if d.name == field {
			add("field", "field %q is also a for_each dimension", field)
		}
	}
	if hasEach && err == nil {
		if _, err := countOf(p.Count, dims); err != nil {
			add("count", "%v", err)
		}
	}
	for _, f := range reservedFields {
		if field == f {
			add("field", "field %q is written by the rule; choose another name", field)
		}
	}
	params, err := genRequestParams(p.Params)
	if err != nil {
		add("params", "%v", err)
	}
	for k, why := range forbiddenParams {
		if _, ok := params[k]; ok {
			add("params", "params.%s cannot be set: %s", k, why)
		}
	}
	price, err := genPrice(p.Price)
	if err != nil {
		add("price", "%v", err)
	}
	if p.MaxCost != nil {
		f := *p.MaxCost
		cfg := apigen.Config{Params: params}
		switch {
		case f <= 0:
			add("max_cost", "max_cost %g: give a positive number of dollars", f)
		case price == (apigen.Price{}):
			add("max_cost", "max_cost needs price (what the API charges per million tokens)")
		case maxTokens(cfg) <= 0:
			add("max_cost", "max_cost needs params.max_tokens: without it a request's cost has no bound, and the budget could not be kept")
		}
	}
	for _, c := range []struct {
		attr string
		n    int
	}{{"concurrency", p.Concurrency}, {"max_attempts", p.MaxAttempts}} {
		if c.n < 1 || c.n > 1024 {
			add(c.attr, "%s must be a whole number from 1 to 1024", c.attr)
		}
	}
	if r := p.RateLimit; r != "" {
		if _, err := apigen.ParseRate(r); err != nil {
			add("rate_limit", "%v", err)
		}
	}
	return errs
}

// toJSON converts an attribute's value to plain Go values (nil when
// unset).
func toJSON(attr string, v cty.Value) (any, error) {
	if v.IsNull() {
		return nil, nil
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", attr, err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return nil, err
	}
	return x, nil
}

func genRequestParams(v cty.Value) (map[string]any, error) {
	x, err := toJSON("params", v)
	if err != nil || x == nil {
		return nil, err
	}
	m, ok := x.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("params must be a map: { temperature = 0.9, max_tokens = 512 }")
	}
	return m, nil
}

func genPrice(v cty.Value) (apigen.Price, error) {
	x, err := toJSON("price", v)
	if err != nil || x == nil {
		return apigen.Price{}, err
	}
	m, ok := x.(map[string]any)
	bad := fmt.Errorf("price must be { input_per_mtok = 0.27, output_per_mtok = 1.10 } (dollars per million tokens)")
	if !ok {
		return apigen.Price{}, bad
	}
	var p apigen.Price
	for k, v := range m {
		n, isNum := v.(json.Number)
		f, err := n.Float64()
		if !isNum || err != nil || f < 0 {
			return apigen.Price{}, bad
		}
		switch k {
		case "input_per_mtok":
			p.InputPerMTok = f
		case "output_per_mtok":
			p.OutputPerMTok = f
		default:
			return apigen.Price{}, fmt.Errorf("price.%s: unknown; %v", k, bad)
		}
	}
	return p, nil
}

func maxTokens(c apigen.Config) int64 {
	for _, k := range []string{"max_tokens", "max_completion_tokens"} {
		if n, ok := c.Params[k].(json.Number); ok {
			i, _ := n.Int64()
			return i
		}
	}
	return 0
}

// genRow is one row to ask about: its fields, and its identity.
type genRow struct {
	fields map[string]any
	id     string
}

func genExecute(ctx context.Context, a *Action, p *genCommon, field string, judge bool) error {
	t := a.Target
	prompt, system, where := p.Prompt, p.System, p.Where
	var rows []genRow
	var err error
	if p.From != "" {
		rows, err = fromRows(a, p.From)
	} else {
		rows, err = forEachRows(t, p)
	}
	if err != nil {
		return err
	}
	params, err := genRequestParams(p.Params)
	if err != nil {
		return err
	}
	price, err := genPrice(p.Price)
	if err != nil {
		return err
	}
	cfg := apigen.Config{
		Name: t.Label.String(), Endpoint: p.Endpoint, Model: p.Model, Params: params, Price: price,
		Concurrency: p.Concurrency, MaxAttempts: p.MaxAttempts, Memo: a.Memo, Log: a.Log,
	}
	if p.MaxCost != nil {
		cfg.MaxCost = *p.MaxCost
	}
	if r := p.RateLimit; r != "" {
		if cfg.Rate, err = apigen.ParseRate(r); err != nil {
			return err
		}
	}
	if env := p.APIKeyEnv; env != "" {
		// Read from cogumi's own environment (actions get a clean one): the
		// key reaches the API's Authorization header and nothing else.
		if cfg.APIKey = os.Getenv(env); cfg.APIKey == "" {
			return fmt.Errorf("%s: api_key_env: the environment variable %s is not set; export it before building", t.AttrPos["api_key_env"], env)
		}
	}

	var kept []genRow
	var reqs []apigen.Request
	for _, r := range rows {
		if where != nil {
			ok, err := where.Bool(r.fields)
			if err != nil {
				return fmt.Errorf("%s: row %s: %w", t.AttrPos["where"], r.id, err)
			}
			if !ok {
				continue
			}
		}
		var msgs []apigen.Message
		if system != nil {
			s, err := system.String(r.fields)
			if err != nil {
				return fmt.Errorf("%s: row %s: %w", t.AttrPos["system"], r.id, err)
			}
			msgs = append(msgs, apigen.Message{Role: "system", Content: s})
		}
		p, err := prompt.String(r.fields)
		if err != nil {
			return fmt.Errorf("%s: row %s: %w", t.AttrPos["prompt"], r.id, err)
		}
		msgs = append(msgs, apigen.Message{Role: "user", Content: p})
		kept = append(kept, r)
		reqs = append(reqs, apigen.Request{ID: r.id, Seed: seedOf(r.id), Messages: msgs})
	}
	limit := "no rate limit"
	if cfg.Rate.N > 0 {
		limit = "rate " + cfg.Rate.String()
	}
	budget := "no max_cost"
	if cfg.MaxCost > 0 {
		budget = fmt.Sprintf("max_cost $%.2f", cfg.MaxCost)
	}
	fmt.Fprintf(a.Log, "%d requests to %s at %s (concurrency %d, %s, %s)\n",
		len(reqs), cfg.Model, cfg.Endpoint, cfg.Concurrency, limit, budget)
	answers, rep, err := apigen.Run(ctx, cfg, reqs)
	if a.Stats != nil {
		a.Stats(rep) // what this run sent, reused and paid, even when it failed
	}
	if err != nil {
		return err
	}

	var out bytes.Buffer
	unparsed, truncated := 0, 0
	for i, r := range kept {
		row := r.fields
		ans := answers[i]
		if ans.FinishReason == "length" {
			truncated++
		}
		if judge {
			if s, ok := ParseScore(ans.Content); ok {
				row[field] = s
			} else {
				row[field] = nil
				unparsed++
			}
		} else {
			row[field] = ans.Content
		}
		if judge {
			row["judge_model"] = cfg.Model // "model" stays the model that wrote the row
		} else {
			row["model"] = cfg.Model
		}
		b, err := json.Marshal(row)
		if err != nil {
			return fmt.Errorf("encoding row %s: %w", r.id, err)
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	if truncated > 0 {
		fmt.Fprintf(a.Log, "warning: %d of %d answers were cut at params.max_tokens (finish_reason \"length\")\n", truncated, len(kept))
	}
	if unparsed > 0 {
		fmt.Fprintf(a.Log, "warning: %d of %d answers hold no score; their rows have %s = null\n", unparsed, len(kept), field)
	}
	if err := os.WriteFile(filepath.Join(a.Out, t.Label.Name+".jsonl"), out.Bytes(), 0o644); err != nil {
		return err
	}
	// The artifact's report says what its answers are and what they cost
	// in all, the same whichever run bought them, so that a re-run that
	// reuses every answer gives identical bytes (and nothing downstream
	// re-runs). What this run sent and reused goes to the build's events.
	report := struct {
		Version   int     `json:"version"`
		Target    string  `json:"target"`
		Endpoint  string  `json:"endpoint"`
		Model     string  `json:"model"`
		Rows      int     `json:"rows"`
		Field     string  `json:"field"`
		Requests  int     `json:"requests"`
		TokensIn  int64   `json:"tokens_in"`
		TokensOut int64   `json:"tokens_out"`
		Cost      float64 `json:"cost"`
		Truncated int     `json:"truncated"`
		Unparsed  *int    `json:"unparsed,omitempty"`
	}{2, t.Label.String(), rep.Endpoint, rep.Model, len(kept), field, rep.Requests,
		rep.TokensIn + rep.ReusedTokensIn, rep.TokensOut + rep.ReusedTokensOut, roundCents(rep.Cost + rep.ReusedCost), truncated, nil}
	if judge {
		report.Unparsed = &unparsed
	}
	b, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Log, "wrote %d rows to %s.jsonl: %d requests sent, %d reused, %d retries; tokens %d in / %d out; cost $%.4f (reused answers had cost $%.4f)\n",
		len(kept), t.Label.Name, rep.Sent, rep.Reused, rep.Retries, rep.TokensIn, rep.TokensOut, rep.Cost, rep.ReusedCost)
	return os.WriteFile(filepath.Join(a.Out, "report.json"), append(b, '\n'), 0o644)
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// roundCents keeps a total cost to a millionth of a dollar: a sum of float
// prices in another order must not change the artifact's bytes.
func roundCents(c float64) float64 { return math.Round(c*1e6) / 1e6 }

var (
	scoreLabel = regexp.MustCompile(`(?i)\bscore\b[^0-9\n-]{0,20}(-?\d+(?:\.\d+)?)`)
	outOf      = regexp.MustCompile(`(-?\d+(?:\.\d+)?)\s*(?:/|out of)\s*\d+`)
	number     = regexp.MustCompile(`-?\d+(?:\.\d+)?`)
)

// ParseScore reads a judge's number: the last "Score: N" (or "score of
// N"), else the first "N/10" or "N out of 10", else the only number in the
// text. A text with several unlabelled numbers has no score: guessing
// would put a wrong number in the data.
func ParseScore(s string) (float64, bool) {
	var num string
	if m := scoreLabel.FindAllStringSubmatch(s, -1); m != nil {
		num = m[len(m)-1][1]
	} else if m := outOf.FindStringSubmatch(s); m != nil {
		num = m[1]
	} else if all := number.FindAllString(s, -1); len(all) == 1 {
		num = all[0]
	}
	if num == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	return f, err == nil
}
