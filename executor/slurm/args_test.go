package slurm

import (
	"strings"
	"testing"
	"time"

	"github.com/cogumi/cogumi/engine/target"
)

// The engine converts a target's resources with Resources(t.Resources):
// this stops compiling when the two structs drift apart.
var _ = Resources(target.Resources{})

func TestFormatTime(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{12 * time.Hour, "0-12:00:00"},
		{90 * time.Second, "0-00:01:30"},
		{36*time.Hour + 5*time.Minute + 7*time.Second, "1-12:05:07"},
		{1500 * time.Millisecond, "0-00:00:02"}, // rounded up, never shortened
		{72 * time.Hour, "3-00:00:00"},
	}
	for _, tt := range tests {
		if got := FormatTime(tt.d); got != tt.want {
			t.Errorf("FormatTime(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestArgs(t *testing.T) {
	cfg := Config{
		Partition:   "gpu",
		Account:     "ml",
		ExtraArgs:   []string{"--qos=high"},
		Constraints: map[string]string{"80GB": "gpu80g"},
		SharedDir:   "/shared",
	}
	tests := []struct {
		name     string
		cfg      Config
		job      Job
		want     string
		warnings []string
	}{
		{
			name: "typed GPU with memory constraint",
			cfg:  cfg,
			job: Job{Name: "//models:base", Script: "true", WorkDir: "/shared/w", LogPath: "/shared/l/%j.log",
				Resources: Resources{GPUs: 1, GPUType: "h100", GPUMemory: "80GB", CPUs: 8, Memory: 64 << 30, Time: 12 * time.Hour}},
			want: "--parsable --job-name=//models:base --partition=gpu --account=ml --gres=gpu:h100:1 --constraint=gpu80g " +
				"--cpus-per-task=8 --mem=65536M --time=0-12:00:00 --chdir=/shared/w --output=/shared/l/%j.log --qos=high",
		},
		{
			name: "untyped GPUs, unmapped memory warns",
			cfg:  Config{},
			job:  Job{Name: "draft", Script: "true", LogPath: "/l.log", Resources: Resources{GPUs: 2, GPUMemory: "40GB", CPUs: 1.5, Memory: 1}},
			want: "--parsable --job-name=draft --gres=gpu:2 --cpus-per-task=2 --mem=1M --output=/l.log",
			warnings: []string{
				`draft: gpu_memory "40GB" has no entry in the executor's constraints map`,
			},
		},
		{
			name: "constraint key matched loosely, default log under the shared dir, export",
			cfg:  Config{SharedDir: "/s", Constraints: map[string]string{"80 gb": "gpu80g"}, Export: "NONE"},
			job:  Job{Name: "a b", Script: "true", Resources: Resources{GPUs: 1, GPUMemory: "80GB"}},
			want: "--parsable --job-name=a_b --gres=gpu:1 --constraint=gpu80g --output=/s/logs/cogumi-%j.log --export=NONE",
		},
		{
			name:     "CPU job ignores gpu_memory; CUDA_VISIBLE_DEVICES is Slurm's",
			cfg:      cfg,
			job:      Job{Name: "cpu", Script: "true", LogPath: "/l", Env: map[string]string{"CUDA_VISIBLE_DEVICES": "0"}, Resources: Resources{GPUMemory: "8GB"}},
			want:     "--parsable --job-name=cpu --partition=gpu --account=ml --output=/l --qos=high",
			warnings: []string{"cpu: CUDA_VISIBLE_DEVICES is not passed to the job"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, warnings, err := Args(tt.cfg, tt.job)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(args, " "); got != tt.want {
				t.Errorf("Args =\n%s\nwant\n%s", got, tt.want)
			}
			if len(warnings) != len(tt.warnings) {
				t.Fatalf("warnings = %q, want %q", warnings, tt.warnings)
			}
			for i := range warnings {
				if !strings.Contains(warnings[i], tt.warnings[i]) {
					t.Errorf("warning %q, want it to contain %q", warnings[i], tt.warnings[i])
				}
			}
		})
	}
}

func TestArgsInvalid(t *testing.T) {
	ok := Job{Name: "x", Script: "true", LogPath: "/l"}
	tests := []struct {
		edit    func(*Job)
		wantErr string
	}{
		{func(j *Job) { j.Name = " " }, "no name"},
		{func(j *Job) { j.Script = "" }, "empty script"},
		{func(j *Job) { j.LogPath = "rel.log" }, "must be absolute"},
		{func(j *Job) { j.LogPath = "/l/%x.log" }, "only %j"},
		{func(j *Job) { j.WorkDir = "w" }, `work directory "w" must be absolute`},
		{func(j *Job) { j.Resources.GPUs = -1 }, "negative resources"},
		{func(j *Job) { j.Resources.GPUType = "h100:2" }, "cannot be a Slurm GRES type"},
		{func(j *Job) { j.Env = map[string]string{"A-B": "1"} }, `"A-B" is not valid`},
		{func(j *Job) { j.LogPath = "" }, "no absolute shared_dir"},
	}
	for _, tt := range tests {
		j := ok
		tt.edit(&j)
		if _, _, err := Args(Config{}, j); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Args(%+v) error = %v, want %q", j, err, tt.wantErr)
		}
	}
	if _, _, err := Args(Config{}, Job{Name: "x", Script: "true", LogPath: "/l/100%%-%j.log"}); err != nil {
		t.Errorf("%%%% and %%j in a log path: %v", err)
	}
}

func TestBatchScript(t *testing.T) {
	got := BatchScript(Job{
		Name:   "//m:t",
		Script: "echo \"$COGUMI_OUT\"",
		Env: map[string]string{
			"COGUMI_OUT":           "/s/out dir",
			"B":                    "it's $HOME `x`",
			"CUDA_VISIBLE_DEVICES": "3",
		},
	})
	want := "#!/bin/bash\n" +
		"# //m:t: written by cogumi's Slurm executor.\n" +
		"export B='it'\\''s $HOME `x`'\n" +
		"export COGUMI_OUT='/s/out dir'\n" +
		"echo \"$COGUMI_OUT\"\n"
	if got != want {
		t.Errorf("BatchScript =\n%s\nwant\n%s", got, want)
	}
}

func TestResolveLog(t *testing.T) {
	if got := resolveLog("/l/100%%/%j.log", "42"); got != "/l/100%/42.log" {
		t.Errorf("resolveLog = %q", got)
	}
}
