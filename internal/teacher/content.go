package teacher

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
)

// Answer returns the teacher's reply to a request and its finish reason
// ("stop", or "length" when max_tokens cut it). The reply is a pure function
// of the model, the messages, the seed and the sampling parameters.
//
// The kind of reply is chosen from the last user message, lowercased:
//
//   - it contains "score", "grade" or "judge": a judge's verdict, one
//     sentence and "Score: N" (N from 1 to 10);
//   - else "answer" or "solve": an answer. A chain-of-thought answer
//     ("Step 1: ...", a self-critique and "Final answer: ...") when the
//     message also says "step by step", "chain of thought", "reason" or
//     "hard"; else a short answer;
//   - else "question", "generate" or "write": a question;
//   - else a one-line acknowledgement.
//
// The domain is the earliest of coding, math, tool use (or tool_use),
// reasoning, reading comprehension, summarisation (or summarization),
// common sense and instruction following in the message (default
// "general"); the difficulty is the earliest of "easy" and "hard" (default
// easy).
func Answer(req ChatRequest) (string, string) {
	h := requestHash(req)
	r := rand.New(rand.NewPCG(binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16])))
	var user string
	for _, m := range req.Messages {
		if m.Role == "user" {
			user = m.Content
		}
	}
	low := strings.ToLower(user)
	domain, hard := domainOf(low), difficultyOf(low) == "hard"
	var content string
	switch {
	case containsAny(low, "score", "grade", "judge"):
		content = judge(r)
	case containsAny(low, "answer", "solve"):
		if hard || containsAny(low, "step by step", "chain of thought", "reason") {
			content = cotAnswer(r, domain, user)
		} else {
			content = shortAnswer(r, domain, user)
		}
	case containsAny(low, "question", "generate", "write"):
		content = question(r, domain, hard)
	default:
		content = "Understood. " + pick(r, "Tell me what you need next.", "Send the next task when ready.", "Ready for the next request.")
	}
	if req.MaxTokens != nil {
		if cut, ok := truncateTokens(content, *req.MaxTokens); ok {
			return cut, "length"
		}
	}
	return content, "stop"
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

var domainCues = []struct{ domain, cue string }{
	{"coding", "coding"}, {"coding", "code"}, {"math", "math"}, {"tool_use", "tool_use"}, {"tool_use", "tool use"},
	{"reasoning", "reasoning"}, {"reading_comprehension", "reading"}, {"summarisation", "summaris"},
	{"summarisation", "summariz"}, {"common_sense", "common sense"}, {"common_sense", "common_sense"},
	{"instruction_following", "instruction"},
}

func domainOf(low string) string {
	best, at := "general", len(low)+1
	for _, c := range domainCues {
		if i := strings.Index(low, c.cue); i >= 0 && i < at {
			best, at = c.domain, i
		}
	}
	return best
}

func difficultyOf(low string) string {
	e, h := strings.Index(low, "easy"), strings.Index(low, "hard")
	if h >= 0 && (e < 0 || h < e) {
		return "hard"
	}
	return "easy"
}

func pick(r *rand.Rand, xs ...string) string { return xs[r.IntN(len(xs))] }

var (
	langs     = []string{"Go", "Python", "Rust", "TypeScript", "C"}
	codeEasy  = []string{"reverses a string", "counts the vowels in a word", "returns the largest of three numbers", "checks whether a number is even", "joins a list of words with commas"}
	codeHard  = []string{"an LRU cache with O(1) get and put", "a rate limiter based on a token bucket", "a trie supporting prefix search", "Dijkstra's shortest paths on a sparse graph", "a thread-safe bounded queue"}
	tools     = []string{"a weather API", "a calendar API", "a unit converter", "a search engine", "a currency exchange API"}
	topics    = []string{"the water cycle", "the history of the printing press", "how vaccines train the immune system", "why leaves change colour", "the invention of the telephone"}
	objects   = []string{"an umbrella", "a candle", "a ladder", "a refrigerator", "a bicycle"}
	people    = []string{"Ana", "Bruno", "Chen", "Dara", "Emeka"}
	formats   = []string{"three bullet points", "exactly two sentences", "a numbered list of four steps", "a table with two columns"}
	judgeWhys = []string{"The text is clear and self-contained", "The request is specific and checkable", "It is understandable but somewhat vague", "It mixes two tasks and is hard to verify", "It is well posed and has one correct result"}
)

func question(r *rand.Rand, domain string, hard bool) string {
	a, b, c := 2+r.IntN(98), 2+r.IntN(98), 2+r.IntN(9)
	switch domain {
	case "coding":
		if hard {
			return fmt.Sprintf("Implement %s in %s, state its complexity, and explain how you would test it.", pick(r, codeHard...), pick(r, langs...))
		}
		return fmt.Sprintf("Write a %s function that %s.", pick(r, langs...), pick(r, codeEasy...))
	case "math":
		if hard {
			return fmt.Sprintf("Prove that the sum of the first %d odd numbers is %d squared, then generalise to any n.", a, a)
		}
		return fmt.Sprintf("What is %d + %d * %d?", a, b, c)
	case "tool_use":
		if hard {
			return fmt.Sprintf("Plan the sequence of calls to %s and %s needed to book a trip for %s on day %d, handling failures.", pick(r, tools...), pick(r, tools...), pick(r, people...), c)
		}
		return fmt.Sprintf("Which single call to %s gives the information for day %d?", pick(r, tools...), c)
	case "reasoning":
		if hard {
			return fmt.Sprintf("%s is older than %s, and %s is younger than %s but older than %s. Who is the youngest, and why?", people[0], people[1], people[2], people[0], people[1])
		}
		return fmt.Sprintf("If %s has %d apples and gives away %d, how many are left?", pick(r, people...), a+b, b)
	case "reading_comprehension":
		return fmt.Sprintf("Read a short passage about %s and say what its main claim is%s.", pick(r, topics...), map[bool]string{true: ", citing two supporting details", false: ""}[hard])
	case "summarisation":
		return fmt.Sprintf("Summarise an article about %s in %s.", pick(r, topics...), pick(r, formats...))
	case "common_sense":
		return fmt.Sprintf("What would you use %s for on a %s day?", pick(r, objects...), pick(r, "rainy", "dark", "busy", "hot"))
	case "instruction_following":
		return fmt.Sprintf("Describe %s using %s and no adjectives.", pick(r, topics...), pick(r, formats...))
	}
	return fmt.Sprintf("Explain %s to a %d-year-old.", pick(r, topics...), 6+c)
}

var arith = regexp.MustCompile(`(\d+) \+ (\d+) \* (\d+)`)

// solve computes what the math template asks, so that answers are right.
func solve(text string) (string, bool) {
	m := arith.FindStringSubmatch(text)
	if m == nil {
		return "", false
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	c, _ := strconv.Atoi(m[3])
	return strconv.Itoa(a + b*c), true
}

func shortAnswer(r *rand.Rand, domain, text string) string {
	if v, ok := solve(text); ok {
		return fmt.Sprintf("Multiplication comes first, so the result is %s.", v)
	}
	switch domain {
	case "coding":
		return "Loop over the input once, keep the running result in a variable, and return it at the end."
	case "tool_use":
		return fmt.Sprintf("Call the %s endpoint once with the date as its parameter.", pick(r, "forecast", "events", "lookup"))
	case "summarisation", "reading_comprehension":
		return "The main point is that small, repeated causes add up to a large visible effect."
	}
	return pick(r, "The short answer is yes, with one caveat about the edge cases.",
		"It depends on the context, but usually the simplest option is right.",
		"The result follows directly from the facts given.")
}

func cotAnswer(r *rand.Rand, domain, text string) string {
	var b strings.Builder
	b.WriteString("Let me think step by step.\n")
	steps := []string{
		"Restate what is given and what is asked.",
		"Split the problem into smaller parts that can be checked separately.",
		"Work out the first part and keep the intermediate result.",
		"Compare with a simpler instance whose result is known.",
		"Check the edge cases against the statement.",
		"Combine the partial results.",
	}
	// The first step and the last stay in place; 1 to 3 of the middle ones are kept.
	mid := steps[1 : len(steps)-1]
	r.Shuffle(len(mid), func(i, j int) { mid[i], mid[j] = mid[j], mid[i] })
	chosen := append(append([]string{steps[0]}, mid[:1+r.IntN(3)]...), steps[len(steps)-1])
	for i, s := range chosen {
		fmt.Fprintf(&b, "Step %d: %s\n", i+1, s)
	}
	b.WriteString("Critique: " + pick(r, "the second step assumed the inputs are valid; they are, by the statement.",
		"no step depends on an unproven claim.", "the check in the last step confirms the result.") + "\n")
	if v, ok := solve(text); ok {
		b.WriteString("Final answer: " + v)
	} else {
		b.WriteString("Final answer: " + map[string]string{
			"coding":   "the implementation above, with tests for the empty input, one element and many elements.",
			"math":     "the statement holds for every n, by induction.",
			"tool_use": "call the tools in order, retrying the failing one before moving on.",
		}[domain])
		if domain != "coding" && domain != "math" && domain != "tool_use" {
			b.WriteString("the conclusion follows from the steps above.")
		}
	}
	return b.String()
}

func judge(r *rand.Rand) string {
	// Scores lean high, as teacher-written data mostly passes.
	score := []int{3, 4, 5, 6, 7, 7, 8, 8, 8, 9, 9, 10}[r.IntN(12)]
	return fmt.Sprintf("%s.\nScore: %d", pick(r, judgeWhys...), score)
}
