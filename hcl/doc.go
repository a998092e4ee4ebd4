// Package hcl loads a workspace: it parses cogumi.hcl and every BUILD.hcl
// with hashicorp/hcl and go-cty, evaluates variables, locals and functions,
// checks every target against its rule's schema, resolves labels and orders
// the targets, reporting every problem at once with its file:line:col.
//
// # Files
//
// The workspace root holds cogumi.hcl. Every directory below it holding a
// BUILD.hcl is a package named by its slash-separated path from the root
// ("" for the root itself). The search skips cogumi-out, node_modules and
// hidden directories, and does not follow links to directories.
//
// cogumi.hcl takes these blocks (settingsBlocks lists all but the first two;
// any other block is an error):
//
//	variable "epochs" {      # var.epochs
//	  type        = number   # optional: string, number, bool, list(...), map(...), object(...), any
//	  default     = 3        # optional; without it a value must be given
//	  description = "..."
//	}
//	locals {                 # local.x, visible in every package
//	  x = "${var.epochs}"
//	}
//	workspace {
//	  name = "demo"          # Workspace.Name; default: the root directory's name
//	}
//	cache {
//	  dir = "~/.cache/demo"  # Workspace.CacheDir, relative to the root
//	}
//
// A variable's value is --var name=value (Options.Vars), else the environment
// variable COGUMI_VAR_name (Options.Env), else its default. Strings, numbers
// and bools are given bare; lists, maps and objects in HCL syntax.
//
// A BUILD.hcl holds locals blocks (the package's own locals, which may not
// reuse a workspace local's name) and targets:
//
//	run "merged" {
//	  srcs    = ["a.txt", ":other", "//data:raw"]
//	  outs    = ["merged.txt"]
//	  command = "cat $SRCS > $OUT/merged.txt"
//	  resources {
//	    cpus   = 1
//	    memory = "512MiB"      # or "64GiB", "1GB", a number of bytes
//	    time   = "1h30m"
//	  }
//	}
//
// # Functions
//
// Expressions can call go-cty's standard functions under Terraform's names
// (see stdFunctions) and two that read the package's files:
//
//   - glob("data/**/*.jsonl"): the package's files matching the pattern,
//     sorted, relative to the package. ** matches any number of directories.
//     Wildcards do not match names starting with a dot, and nothing is found
//     in hidden directories, cogumi-out, node_modules or sub-packages. Matching
//     no file is an error.
//   - file("prompt.txt"): the text of a file of the package (UTF-8, at most
//     16 MiB). Its contents become part of the attribute's value.
//
// # Inputs
//
// An attribute a rule declares as sources lists files of the package and
// labels; files must exist, stay inside the package and hold no white space
// in their paths. Label attributes hold labels only. Each becomes a
// target.Input, in the order written, positioned at the list element.
//
// # Load cache
//
// With Options.CacheFile set, each package's evaluated targets are kept
// between loads, with everything the evaluation read; see loadcache.go.
package hcl
