// Package rules holds the implementation of every target kind: its schema
// (which attributes it takes and which of them are in the action key) and
// how it executes an action.
package rules

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/engine/target"
)

// InputKind says whether, and how, an attribute names inputs.
type InputKind int

const (
	// NoInput: a plain value.
	NoInput InputKind = iota
	// LabelInput: a string holding one label (model = ":base").
	LabelInput
	// SourcesInput: a list of strings, each a file of the package (or a
	// glob() result) or a label (srcs = ["a.txt", ":other"]).
	SourcesInput
	// LabelMapInput: a map of labels (modifiers = { coding = ":code" }).
	LabelMapInput
	// FileInput: a string holding one file of the package or one label
	// (script = "train.py").
	FileInput
	// LabelKeyMapInput: a map whose keys are labels
	// (max_bytes = { ":final" = "890MB" }); the staged artifact of key k is
	// InputDirs["attr.k"], k as written.
	LabelKeyMapInput
)

// KeyUse says how an attribute enters the action key. The zero value is
// deliberately invalid: every attribute must decide (see TestSchemasDecideKey).
type KeyUse int

const (
	keyUndecided KeyUse = iota
	// InKey: the attribute's canonical value is a record of the key.
	InKey
	// NotInKey: the attribute only decides where or when the action runs.
	NotInKey
)

// Attr describes one attribute of a rule kind.
type Attr struct {
	Name     string
	Type     cty.Type // cty.DynamicPseudoType accepts any value
	Required bool
	Input    InputKind
	Key      KeyUse
	// Ordered: an object whose keys' written order matters (for_each). When
	// it is written as an object literal, the loader also sets the
	// attribute OrderOf(Name) to its keys in that order; the schema must
	// declare that attribute (a list of strings, in the key). cty objects
	// themselves have no order.
	Ordered bool
	// Row: the expression may read row, the JSONL row being processed
	// (where = row.score >= 7); it is kept and evaluated per row at build
	// time (package rowexpr). A plain string value is a template over row.
	Row bool
	Doc string
	// Default is the value of an unset attribute as HCL writes it ("4",
	// "tensor"), "" for none. Rules get it from decode; it is shown by
	// cogumi help and never enters the action key (see decl.go).
	Default string
}

// OrderOf names the attribute holding an Ordered attribute's keys in the
// order written. The dot keeps it out of what users can write.
func OrderOf(attr string) string { return attr + ".order" }

// Schema is what a rule kind accepts.
type Schema struct {
	// Summary says in a line what a target of the kind makes (cogumi help).
	Summary string
	Attrs   []Attr
	Traits  Traits
}

// Traits are what the engine and the loader need to know about a rule
// kind beyond its attributes, in one place.
type Traits struct {
	// Source marks a source group (files, model): the target has no action;
	// its artifact is its input files, hashed where they lie.
	Source bool
	// Resources allows a resources block and an executor attribute.
	Resources bool
	// Toolchains are the toolchains of cogumi.hcl the rule runs; their
	// versions join its action keys.
	Toolchains []string
	// LiveLog: actions run long on this machine and report progress in
	// their log (API generation): the engine echoes their log lines on the
	// terminal as they come, as it does for GPU jobs.
	LiveLog bool
	// UsesName: outputs contain the target's own label or name
	// (generate's <name>.jsonl and prompt ids), so the label joins the
	// action key. Other rules' identical recipes share one action whatever
	// their targets are called.
	UsesName bool
	// AllCPUs: actions run inside cogumi on every core (AWQ's search,
	// quantisation, zstd): unless the target declares resources { cpus = N },
	// the scheduler counts such an action as taking all of the CPU budget,
	// so it does not run beside other CPU work it would slow.
	AllCPUs bool
	// Provenance: outputs describe where their inputs came from (release's
	// manifest.json): the action gets Action.Provenance, and the engine
	// adds to its key every record Provenance holds that the key would not
	// otherwise cover (each target input's producing action key, cogumi's
	// version, the workspace's commit), so equal keys still mean equal bytes.
	Provenance bool
}

// Attr returns the attribute named name.
func (s Schema) Attr(name string) (Attr, bool) {
	for _, a := range s.Attrs {
		if a.Name == name {
			return a, true
		}
	}
	return Attr{}, false
}

// AttrError is a problem with one attribute, found by a rule's Check.
type AttrError struct {
	Attr string // "" for the whole block
	Msg  string
}

// Action is everything a rule needs to execute one target.
type Action struct {
	Target *target.Target
	// Dir is the scratch directory, laid out like the workspace: source files
	// at their workspace paths, a target's artifact under pkg/target/. The
	// command runs there.
	Dir string
	// Out is the absolute directory the outputs must be written to.
	Out string
	// Srcs are the input files relative to Dir in declared order, each label
	// expanded to its artifact's files in sorted order.
	Srcs []string
	// InputDirs maps each label-valued attribute to the staged path of its
	// artifact (or of the file or directory its Sub path names).
	InputDirs map[string]string
	// InputDigests maps the same names as InputDirs to the digest the
	// action key holds for each target input: the BLAKE3 tree digest of
	// what its label names. Rules may write them into outputs (an adapter
	// records its base's): they are in the key.
	InputDigests map[string]string
	// Env is the base environment: PATH, HOME, TMPDIR.
	Env []string
	// ResumeDir survives a failed, cancelled or timed-out attempt of this
	// target and is removed after success: a long training resumes there.
	ResumeDir string
	// VisibleDevices is CUDA_VISIBLE_DEVICES: the GPUs the action may use
	// (UUIDs), "" for none.
	VisibleDevices string
	// Toolchains maps a toolchain's name to its command ("python": "python3").
	Toolchains map[string]string
	// PythonBackend is the torch runtime backend of python actions
	// ("transformers", "builtin", "auto"; "" for the runtime's default).
	PythonBackend string
	// PythonPath is a directory holding cogumi's Python modules
	// (cogumi_safetensors), for python actions' PYTHONPATH.
	PythonPath string
	// Log receives the action's output.
	Log io.Writer
	// Stats records figures about this run that are not part of the
	// artifact (requests sent now, what they cost): they reach the build's
	// events and summary, and never the cache key or the outputs. Called at
	// most once; JSON-encodable.
	Stats func(v any)
	// Memo keeps the results of an action's sub-steps (each paid API
	// request's response) the moment they exist, shared through the cache
	// like artifacts: an interrupted or failed action keeps what it paid for.
	// nil when the engine offers none.
	Memo Memo
	// Provenance describes the inputs, cogumi and the workspace; set only
	// for rules with Traits.Provenance, whose keys cover all of it.
	Provenance *Provenance
	// Exec runs a command for the rule on the action's executor, in Dir,
	// with Env plus env, streaming to Log. Ctrl-C stops its process group.
	Exec func(ctx context.Context, argv []string, env []string) error
}

// Provenance is what a Traits.Provenance rule may write about where its
// inputs came from. Every field is in the action key.
type Provenance struct {
	// CogumiVersion is the version of the cogumi that runs the action.
	CogumiVersion string
	// Commit is the git commit (HEAD) of the workspace, "" when the
	// workspace is in no git repository.
	Commit string
	// Inputs are the target inputs (not source files), in declared order.
	Inputs []InputProvenance
}

// InputProvenance is one target input of an action.
type InputProvenance struct {
	Attr  string // the attribute naming it
	Key   string // its key in a map attribute, "" otherwise
	Label string // the label as resolved (//models:final, //m:e/metrics.json)
	// Dir is the staged path of what the label names (a directory, or the
	// file a label's sub-path names).
	Dir string
	// ActionKey is the key of the action that produced the artifact, ""
	// for a source group (files, model), which no action produces.
	ActionKey string
	// Tree is the tree digest of what the label names (BLAKE3).
	Tree string
}

// Memo is a persistent key-value store for an action's sub-steps. Keys are
// scoped to the rule kind; a key must say everything its value depends on.
type Memo interface {
	// Get returns the value stored under key, if any.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Put stores value under key. When it returns, the entry is in the
	// cache (renamed into place): it survives the build failing, being
	// interrupted or killed; like every cache entry it is not fsynced, so a
	// power loss may take the last ones.
	Put(ctx context.Context, key string, value []byte) error
}

// Rule is the implementation of one target kind.
type Rule interface {
	Kind() string
	// Version changes whenever the rule's outputs may change for the same
	// inputs; it is part of every action key of the kind.
	Version() string
	Schema() Schema
	// Check validates a target beyond its schema's types.
	Check(t *target.Target) []AttrError
	// Execute runs the action; only a nil return makes its outputs count.
	Execute(ctx context.Context, a *Action) error
	// Outs lists the paths the action must create under Out; nil when the
	// rule does not declare them in advance.
	Outs(t *target.Target) []string
}

// KeyRecorder is implemented by rules some of whose targets run code that
// no other record of their key covers: calibrate with an imatrix attribute
// runs a Python script kept out of the python-modules digest
// (executor/python's Script), so that adding it changed no other key.
// KeyRecords returns those records; they join the target's key after its
// toolchains'. A target for which it returns none keeps the key it would
// have without the interface.
type KeyRecorder interface {
	KeyRecords(t *target.Target) []KeyRecord
}

// KeyRecord is one record of an action key: what it is and its value
// (`python-script "x.py"` and the script's digest).
type KeyRecord struct {
	Name, Value string
}

// Registry maps kinds to rules. It is built once at start-up and then only read.
type Registry struct {
	rules map[string]Rule
}

// NewRegistry returns a registry of the given rules; kinds must be unique.
func NewRegistry(rs ...Rule) (*Registry, error) {
	r := &Registry{rules: make(map[string]Rule, len(rs))}
	for _, rule := range rs {
		if _, dup := r.rules[rule.Kind()]; dup {
			return nil, fmt.Errorf("rule kind %q registered twice", rule.Kind())
		}
		r.rules[rule.Kind()] = rule
	}
	return r, nil
}

// Default returns the registry of every rule cogumi ships.
func Default() *Registry {
	all := defaultRules()
	r := &Registry{rules: make(map[string]Rule, len(all))}
	for _, rule := range all {
		r.rules[rule.Kind()] = rule
	}
	return r
}

// defaultRules lists the rules Default registers; their kinds are unique
// (TestDefaultKindsUnique).
func defaultRules() []Rule {
	return []Rule{Files{}, Run{}, Train{}, Model{}, Prune{}, Compress{}, Decompress{}, GGUF{}, Gate{}, Router{}, Calibrate{}, Imatrix{}, AWQ{}, Eval{}, Lora{}, MergeLora{}, Generate{}, Judge{}, Dataset{}, Release{}, Serving{}, BenchServing{}}
}

// All returns every rule of the registry, sorted by kind.
func (r *Registry) All() []Rule {
	out := make([]Rule, 0, len(r.rules))
	for _, k := range r.Kinds() {
		out = append(out, r.rules[k])
	}
	return out
}

// Lookup returns the rule for kind.
func (r *Registry) Lookup(kind string) (Rule, bool) {
	rule, ok := r.rules[kind]
	return rule, ok
}

// Kinds returns the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	ks := make([]string, 0, len(r.rules))
	for k := range r.rules {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// DirSource is implemented by source rules whose artifact is every file
// under a directory (a checkpoint directory), found at build time, not
// listed in the configuration.
type DirSource interface {
	// SourceDir returns the directory relative to the target's package, and
	// the attribute that names it (for messages).
	SourceDir(t *target.Target) (dir, attr string)
}

// SourceChecker is implemented by source rules that validate their files
// (a checkpoint's headers). The engine calls it only when the files'
// digests change, so a no-op build reads nothing.
type SourceChecker interface {
	CheckSource(ctx context.Context, t *target.Target, dir string) error
}
