package rules

import (
	"context"
	"errors"

	"github.com/cogumi/cogumi/engine/target"
)

// Files is a group of source files (files "x" { srcs = glob("data/*") }).
// It runs nothing: its artifact is its files, hashed where they lie.
type Files struct{}

func (Files) Kind() string    { return "files" }
func (Files) Version() string { return "1" }

// filesParams are the attributes of a files target.
type filesParams struct {
	Srcs []string `cogumi:"srcs,key,required,input=sources" doc:"source files of this package (paths or glob() results) and labels"`
}

func (Files) Schema() Schema {
	return Schema{Summary: "a group of source files, hashed where they lie; nothing runs", Attrs: attrsOf[filesParams](), Traits: Traits{Source: true}}
}

func (Files) Check(*target.Target) []AttrError { return nil }

// Outs: a source group has no action, so no outputs.
func (Files) Outs(*target.Target) []string { return nil }

func (Files) Execute(context.Context, *Action) error {
	return errors.New("files targets are source groups and have no action")
}
