package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// usageError is a mistake on the command line: an unknown command or
// flag, a wrong number of arguments, a bad flag value. cogumi prints it
// with the command's usage and exits with exitConfig.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usage formats the error and the usage of the command it is about.
func (e *usageError) usage() string {
	return fmt.Sprintf("cogumi: %v\n\n%s", e.err, strings.TrimRight(e.cmd.UsageString(), "\n"))
}

// checkCommandLine makes every mistake on the command line under root a
// *usageError: cobra reports an unknown flag or a wrong argument count as
// a plain error, and runs a command group (cogumi cache) given an unknown
// subcommand as if asked for its help, successfully.
func checkCommandLine(root *cobra.Command) {
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{c, err} })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() && !c.Runnable() {
			c.Args = unknownCommand
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		}
		if check := c.Args; check != nil {
			c.Args = func(c *cobra.Command, args []string) error {
				if err := check(c, args); err != nil {
					return &usageError{c, err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// unknownCommand refuses any argument to a command group: it can only be
// the name of a subcommand that does not exist.
func unknownCommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return fmt.Errorf("%s", msg)
}
