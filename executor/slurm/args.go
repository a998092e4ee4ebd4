package slurm

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Args returns sbatch's arguments for job (without the batch script's
// path, which comes last), and warnings for needs the cluster cannot be
// told about. It runs nothing, so the engine can show the warnings when it
// plans the build.
func Args(cfg Config, job Job) (args, warnings []string, err error) {
	if err := job.validate(cfg); err != nil {
		return nil, nil, err
	}
	r := job.Resources
	args = []string{"--parsable", "--job-name=" + jobName(job.Name)}
	if cfg.Partition != "" {
		args = append(args, "--partition="+cfg.Partition)
	}
	if cfg.Account != "" {
		args = append(args, "--account="+cfg.Account)
	}
	if r.GPUs > 0 {
		if r.GPUType != "" {
			args = append(args, fmt.Sprintf("--gres=gpu:%s:%d", r.GPUType, r.GPUs))
		} else {
			args = append(args, fmt.Sprintf("--gres=gpu:%d", r.GPUs))
		}
		if r.GPUMemory != "" {
			if c, ok := constraintFor(cfg.Constraints, r.GPUMemory); ok {
				args = append(args, "--constraint="+c)
			} else {
				warnings = append(warnings, fmt.Sprintf(
					"%s: gpu_memory %q has no entry in the executor's constraints map, so Slurm is not told about it and may give the job a smaller GPU (add e.g. constraints = { %q = \"<node feature>\" })",
					job.Name, r.GPUMemory, r.GPUMemory))
			}
		}
	}
	if r.CPUs > 0 {
		args = append(args, "--cpus-per-task="+strconv.Itoa(int(math.Ceil(r.CPUs))))
	}
	if r.Memory > 0 {
		// Slurm's M is MiB; round up so the job never gets less than asked.
		args = append(args, fmt.Sprintf("--mem=%dM", (r.Memory+(1<<20)-1)>>20))
	}
	if r.Time > 0 {
		args = append(args, "--time="+FormatTime(r.Time))
	}
	if job.WorkDir != "" {
		args = append(args, "--chdir="+job.WorkDir)
	}
	args = append(args, "--output="+logPath(cfg, job))
	if cfg.Export != "" {
		args = append(args, "--export="+cfg.Export)
	}
	// Extra arguments come last so that they override what cogumi chose.
	args = append(args, cfg.ExtraArgs...)
	for k := range job.Env {
		if k == "CUDA_VISIBLE_DEVICES" {
			warnings = append(warnings, job.Name+": CUDA_VISIBLE_DEVICES is not passed to the job: Slurm sets it to the GPUs it allocates")
		}
	}
	return args, warnings, nil
}

// constraintFor finds the node feature for a gpu_memory value, first as
// written, then ignoring case and spaces ("80 gb" finds "80GB").
func constraintFor(m map[string]string, mem string) (string, bool) {
	if c, ok := m[mem]; ok {
		return c, true
	}
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "")) }
	for k, c := range m {
		if norm(k) == norm(mem) {
			return c, true
		}
	}
	return "", false
}

// jobName keeps a name on one line: sbatch takes it as an argument, but
// squeue and scontrol print it in space- and newline-separated output.
func jobName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' || r == ' ' {
			return '_'
		}
		return r
	}, name)
}

// logPath is where the job's stdout and stderr go, with Slurm's %j for
// the job id.
func logPath(cfg Config, job Job) string {
	if job.LogPath != "" {
		return job.LogPath
	}
	return filepath.Join(cfg.SharedDir, "logs", "cogumi-%j.log")
}

// resolveLog substitutes the job id into a log path.
func resolveLog(path, jobID string) string {
	return strings.ReplaceAll(strings.ReplaceAll(path, "%j", jobID), "%%", "%")
}

// validEnvName reports whether a shell accepts s as a variable name.
func validEnvName(s string) bool {
	for i, r := range s {
		letter := r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return s != ""
}

func (j Job) validate(cfg Config) error {
	if strings.TrimSpace(j.Name) == "" {
		return fmt.Errorf("slurm job: no name")
	}
	if j.Script == "" {
		return fmt.Errorf("slurm job %s: empty script", j.Name)
	}
	if j.LogPath != "" {
		if !filepath.IsAbs(j.LogPath) {
			return fmt.Errorf("slurm job %s: log path %q must be absolute (the job writes it on the compute node)", j.Name, j.LogPath)
		}
		// Only %j can be resolved here to tail the log.
		if rest := strings.ReplaceAll(strings.ReplaceAll(j.LogPath, "%%", ""), "%j", ""); strings.Contains(rest, "%") {
			return fmt.Errorf("slurm job %s: log path %q: only %%j (the job id) may be used", j.Name, j.LogPath)
		}
	}
	if j.LogPath == "" && !filepath.IsAbs(cfg.SharedDir) {
		return fmt.Errorf("slurm job %s: no log path, and the executor has no absolute shared_dir to put one in", j.Name)
	}
	if j.WorkDir != "" && !filepath.IsAbs(j.WorkDir) {
		return fmt.Errorf("slurm job %s: work directory %q must be absolute", j.Name, j.WorkDir)
	}
	r := j.Resources
	if r.GPUs < 0 || r.CPUs < 0 || r.Memory < 0 || r.Time < 0 {
		return fmt.Errorf("slurm job %s: negative resources %+v", j.Name, r)
	}
	if strings.ContainsAny(r.GPUType, ":, ") {
		return fmt.Errorf("slurm job %s: gpu_type %q cannot be a Slurm GRES type (no ':', ',' or spaces)", j.Name, r.GPUType)
	}
	for k := range j.Env {
		if !validEnvName(k) {
			return fmt.Errorf("slurm job %s: environment variable name %q is not valid in a shell", j.Name, k)
		}
	}
	return nil
}

// FormatTime writes a time limit as Slurm's D-HH:MM:SS, rounding up to
// whole seconds (a limit is never shortened). Slurm itself rounds up to
// whole minutes.
func FormatTime(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return fmt.Sprintf("%d-%02d:%02d:%02d", s/86400, s%86400/3600, s%3600/60, s%60)
}

// BatchScript is the file handed to sbatch: the job's environment as
// exports, then the job's script. Values are single-quoted, so nothing in
// them is expanded by the shell.
func BatchScript(job Job) string {
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "# %s: written by cogumi's Slurm executor.\n", jobName(job.Name))
	keys := make([]string, 0, len(job.Env))
	for k := range job.Env {
		if k != "CUDA_VISIBLE_DEVICES" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(job.Env[k]))
	}
	b.WriteString(job.Script)
	if !strings.HasSuffix(job.Script, "\n") {
		b.WriteString("\n")
	}
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
