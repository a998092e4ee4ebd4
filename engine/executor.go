package engine

import (
	"context"
	"io"

	"github.com/cogumi/cogumi/engine/target"
)

// Executor runs the commands of actions elsewhere than this machine (a
// Slurm cluster). The engine still stages inputs and stores outputs; the
// executor only runs argv and reports how it ended.
type Executor interface {
	// Exec runs argv with env in dir for target t, within t's resources,
	// streaming its output to log. Cancelling ctx cancels the job.
	Exec(ctx context.Context, t *target.Target, dir string, argv, env []string, log io.Writer) error
	// ScratchRoot is where scratch directories of its actions must be made
	// (a directory the executor's machines share); "" for the cache's.
	ScratchRoot() string
}
