package engine

import (
	"encoding/json"

	"github.com/cogumi/cogumi/cache"
)

// Result says how a target's artifact was obtained in a build.
type Result string

const (
	Built   Result = "built"   // its action ran here
	Cached  Result = "cached"  // its action result was in the local cache
	Remote  Result = "remote"  // its action result came from the remote cache
	Failed  Result = "failed"  // its action failed, or it could not be prepared
	Skipped Result = "skipped" // a dependency failed, or the build stopped first
	Source  Result = "source"  // a source group: nothing to run
)

// Event is the outcome of one target in a build, as --events writes it.
type Event struct {
	Label     string          `json:"label"`
	Result    Result          `json:"result"`
	ActionKey cache.ActionKey `json:"action_key,omitzero"`
	Seconds   float64         `json:"seconds"`
	Reason    string          `json:"reason,omitempty"` // why it ran
	Error     string          `json:"error,omitempty"`
	// Stats are the figures a rule reported about its run (rules.Action.Stats).
	Stats json.RawMessage `json:"stats,omitempty"`
}

// Observer is told what the engine does, for progress display and events.
// Methods are called from several goroutines.
type Observer interface {
	// Planned is called once with the number of targets in the build.
	Planned(total int)
	// Started is called when an action starts running, with the reason.
	Started(label, reason string)
	// Waiting is called when another process is building the same action.
	Waiting(label string)
	// Warn reports a problem the build survives (a corrupt cache entry).
	Warn(msg string)
	// Output is one line of a running GPU or cluster action's output,
	// shown live.
	Output(label, line string)
	// Done is called once per target; logTail holds the end of a failed
	// action's output.
	Done(ev Event, logTail string)
}

// nopObserver ignores everything.
type nopObserver struct{}

func (nopObserver) Planned(int)            {}
func (nopObserver) Started(string, string) {}
func (nopObserver) Waiting(string)         {}
func (nopObserver) Warn(string)            {}
func (nopObserver) Output(string, string)  {}
func (nopObserver) Done(Event, string)     {}
