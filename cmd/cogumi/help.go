package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/zclconf/go-cty/cty"

	"github.com/cogumi/cogumi/rules"
)

// newHelpCmd replaces cobra's help command: besides help about a command,
// it shows the rule kinds (cogumi help rules) and the attributes of one
// (cogumi help prune), generated from the rules' declarations, so that
// what help says is what the loader accepts.
func newHelpCmd(reg *rules.Registry) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command | rules | <rule kind>]",
		Short: "Help about a command, the rule kinds, or the attributes of one kind",
		Long: `Help about a command (cogumi help build), the rule kinds a BUILD.hcl can use
(cogumi help rules), or the attributes of one kind (cogumi help prune).`,
		RunE: func(c *cobra.Command, args []string) error {
			return runHelp(c, reg, args)
		},
	}
}

func runHelp(c *cobra.Command, reg *rules.Registry, args []string) error {
	out := c.OutOrStdout()
	root := c.Root()
	if len(args) == 1 {
		if args[0] == "rules" {
			return writeRulesHelp(out, reg)
		}
		if cmd, _, err := root.Find(args); err != nil || cmd == root {
			if rule, ok := reg.Lookup(args[0]); ok {
				return writeRuleHelp(out, rule)
			}
		}
	}
	cmd, rest, err := root.Find(args)
	if err != nil || len(rest) > 0 {
		return &usageError{c, fmt.Errorf("unknown help topic %q: give a command, rules, or a rule kind (%s)",
			strings.Join(args, " "), strings.Join(reg.Kinds(), ", "))}
	}
	cmd.InitDefaultHelpFlag()
	return cmd.Help()
}

// writeRulesHelp lists every rule kind with its summary and attributes.
func writeRulesHelp(w io.Writer, reg *rules.Registry) error {
	fmt.Fprintf(w, "Rule kinds: a target is <kind> \"<name>\" { attributes } in a BUILD.hcl.\n")
	fmt.Fprintf(w, "cogumi help <kind> shows a kind's attributes, their types, defaults and docs.\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, rule := range reg.All() {
		s := rule.Schema()
		var names []string
		for _, a := range visibleAttrs(s) {
			names = append(names, a.Name)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", rule.Kind(), s.Summary)
		fmt.Fprintf(tw, "  \t  %s\n", strings.Join(names, ", "))
	}
	return tw.Flush()
}

// writeRuleHelp describes one rule kind: its attributes and traits.
func writeRuleHelp(w io.Writer, rule rules.Rule) error {
	s := rule.Schema()
	tr := rule.Schema().Traits
	fmt.Fprintf(w, "%s (version %s)", rule.Kind(), rule.Version())
	if s.Summary != "" {
		fmt.Fprintf(w, ": %s", s.Summary)
	}
	fmt.Fprintf(w, "\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  ATTRIBUTE\tTYPE\tDEFAULT\tKEY\tDOC\n")
	for _, a := range visibleAttrs(s) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", a.Name, attrType(a), attrDefault(a), attrKey(a), a.Doc)
	}
	if tr.Resources {
		fmt.Fprintf(tw, "  executor\tstring\t-\tno\tthe executor block of cogumi.hcl that runs the action; local when unset\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if notes := traitNotes(tr); len(notes) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(notes, "\n"))
	}
	return nil
}

// visibleAttrs leaves out the attributes the loader sets itself
// (rules.OrderOf), which users cannot write.
func visibleAttrs(s rules.Schema) []rules.Attr {
	var out []rules.Attr
	for _, a := range s.Attrs {
		if !strings.Contains(a.Name, ".") {
			out = append(out, a)
		}
	}
	return out
}

// attrType names an attribute's type as a user writes values of it.
func attrType(a rules.Attr) string {
	var ty string
	switch a.Input {
	case rules.LabelInput:
		ty = "label"
	case rules.FileInput:
		ty = "file or label"
	case rules.SourcesInput:
		ty = "list of files and labels"
	case rules.LabelMapInput:
		if a.Type.Equals(cty.DynamicPseudoType) {
			ty = "object with labels"
		} else {
			ty = "map of labels"
		}
	case rules.LabelKeyMapInput:
		ty = "map keyed by labels"
	default:
		ty = a.Type.FriendlyName()
		if a.Type.Equals(cty.DynamicPseudoType) {
			ty = "any"
		}
	}
	if a.Row {
		ty += " over row"
	}
	return ty
}

// attrDefault is what an unset attribute means: required, a declared
// default (quoted for strings, as HCL writes them), or nothing.
func attrDefault(a rules.Attr) string {
	switch {
	case a.Required:
		return "required"
	case a.Default == "":
		return "-"
	case a.Type.Equals(cty.String) || (a.Type.Equals(cty.DynamicPseudoType) && !isNumber(a.Default)):
		return fmt.Sprintf("%q", a.Default)
	}
	return a.Default
}

func isNumber(s string) bool {
	_, err := cty.ParseNumberVal(s)
	return err == nil
}

func attrKey(a rules.Attr) string {
	if a.Key == rules.InKey {
		return "yes"
	}
	return "no"
}

// traitNotes says in words what the kind's traits mean for a user.
func traitNotes(tr rules.Traits) []string {
	var notes []string
	if tr.Source {
		notes = append(notes, "A source: nothing runs; the files are hashed where they lie.")
	}
	if tr.Resources {
		notes = append(notes, "Takes a resources { cpus, memory, gpus, gpu_type, gpu_memory, time } block and an executor.")
	}
	if len(tr.Toolchains) > 0 {
		notes = append(notes, fmt.Sprintf("Runs the toolchain(s) %s of cogumi.hcl; their versions are in the action key.", strings.Join(tr.Toolchains, ", ")))
	}
	if tr.UsesName {
		notes = append(notes, "Its outputs hold the target's name, so its label is in the action key.")
	}
	if tr.AllCPUs {
		notes = append(notes, "Uses every CPU of the machine: the scheduler runs it beside no other CPU work.")
	}
	if tr.LiveLog {
		notes = append(notes, "Its log is shown live on the terminal.")
	}
	notes = append(notes, "KEY yes: the attribute's value is part of the action key (changing it rebuilds).")
	return notes
}
