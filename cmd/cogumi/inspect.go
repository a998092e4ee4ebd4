package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dominikbraun/graph"
	"github.com/dominikbraun/graph/draw"
	"github.com/spf13/cobra"

	"github.com/cogumi/cogumi/engine"
	"github.com/cogumi/cogumi/engine/label"
)

func newQueryCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "query EXPR",
		Short: "List targets selected by a query over the target graph",
		Long: `Query prints the labels an expression selects, one per line, sorted.

  //models:final, //models/..., //...   targets matching a pattern
  deps(EXPR)                            EXPR and everything it depends on
  rdeps(UNIVERSE, EXPR)                 targets in UNIVERSE that depend on EXPR (EXPR included)

Examples:
  cogumi query 'deps(//models:final)'
  cogumi query 'rdeps(//..., //data:raw)'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, e, err := g.inspect(cmd.Context())
			if err != nil {
				return err
			}
			ls, err := e.Query(args[0], w.pkg)
			if err != nil {
				return &exitError{code: exitConfig, err: err}
			}
			for _, l := range ls {
				fmt.Fprintln(g.stdout, l)
			}
			return nil
		},
	}
}

// inspect loads the workspace and an engine for read-only commands.
func (g *globals) inspect(ctx context.Context) (*workspace, *engine.Engine, error) {
	w, err := g.load()
	if err != nil {
		return nil, nil, err
	}
	e, err := g.engine(ctx, w, engine.Config{})
	if err != nil {
		return nil, nil, err
	}
	return w, e, nil
}

func newGraphCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph [--format dot|mermaid|json] [TARGET...]",
		Short: "Print the target graph (default: everything)",
		Long: `Graph prints the named targets and everything they depend on, with their
dependency edges, as Graphviz DOT, a Mermaid flowchart or JSON.

Example:
  cogumi graph --format dot //models:final | dot -Tsvg > graph.svg`,
		RunE: func(cmd *cobra.Command, args []string) error {
			w, e, err := g.inspect(cmd.Context())
			if err != nil {
				return err
			}
			roots, err := w.labels(e, defaultAll(args))
			if err != nil {
				return err
			}
			nodes, edges, err := e.Subgraph(roots)
			if err != nil {
				return err
			}
			switch format {
			case "dot":
				return writeDOT(g, nodes, edges)
			case "mermaid":
				writeMermaid(g, nodes, edges)
				return nil
			case "json":
				return writeJSONGraph(g, e, nodes, edges)
			}
			return &exitError{code: exitConfig, err: fmt.Errorf("--format %q: use dot, mermaid or json", format)}
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "output format: dot, mermaid or json")
	return cmd
}

func writeDOT(g *globals, nodes []label.Label, edges []engine.Edge) error {
	gr := graph.New(graph.StringHash, graph.Directed())
	for _, n := range nodes {
		if err := gr.AddVertex(n.String()); err != nil {
			return err
		}
	}
	for _, e := range edges {
		if err := gr.AddEdge(e.From.String(), e.To.String()); err != nil {
			return err
		}
	}
	return draw.DOT(gr, g.stdout)
}

func writeMermaid(g *globals, nodes []label.Label, edges []engine.Edge) {
	id := make(map[label.Label]string, len(nodes))
	fmt.Fprintln(g.stdout, "flowchart LR")
	for i, n := range nodes {
		id[n] = fmt.Sprintf("n%d", i)
		fmt.Fprintf(g.stdout, "  %s[%q]\n", id[n], n.String())
	}
	for _, e := range edges {
		fmt.Fprintf(g.stdout, "  %s --> %s\n", id[e.From], id[e.To])
	}
}

func writeJSONGraph(g *globals, e *engine.Engine, nodes []label.Label, edges []engine.Edge) error {
	type jnode struct {
		Label string   `json:"label"`
		Kind  string   `json:"kind"`
		Deps  []string `json:"deps"`
	}
	deps := make(map[label.Label][]string)
	for _, ed := range edges {
		deps[ed.From] = append(deps[ed.From], ed.To.String())
	}
	out := make([]jnode, len(nodes))
	for i, n := range nodes {
		out[i] = jnode{Label: n.String(), Kind: e.Kind(n), Deps: deps[n]}
		if out[i].Deps == nil {
			out[i].Deps = []string{}
		}
	}
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"targets": out})
}

func newWhyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "why TARGET",
		Short: "Explain why a target would be rebuilt",
		Long: `Why compares the action key of TARGET with the one of its last build and
names each record that changed: an input file's digest, an attribute's value, the
rule's version. A stale dependency is explained in turn, indented.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, e, err := g.inspect(cmd.Context())
			if err != nil {
				return err
			}
			ls, err := w.labels(e, args)
			if err != nil {
				return err
			}
			for _, l := range ls {
				lines, err := e.Why(cmd.Context(), l)
				if err != nil {
					return err
				}
				if len(lines) == 0 {
					fmt.Fprintf(g.stdout, "%s is up to date\n", l)
					continue
				}
				fmt.Fprintf(g.stdout, "%s would be rebuilt:\n", l)
				for _, line := range lines {
					fmt.Fprintf(g.stdout, "  %s\n", line)
				}
			}
			return nil
		},
	}
}

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status [TARGET...]",
		Short: "Show which targets are stale and why, without building",
		RunE: func(cmd *cobra.Command, args []string) error {
			w, e, err := g.inspect(cmd.Context())
			if err != nil {
				return err
			}
			roots, err := w.labels(e, defaultAll(args))
			if err != nil {
				return err
			}
			items, err := e.Plan(cmd.Context(), roots)
			if err != nil {
				return err
			}
			stale := 0
			for _, it := range items {
				switch {
				case it.Source:
					continue
				case it.Stale:
					stale++
					fmt.Fprintf(g.stdout, "stale       %s: %s\n", it.Label, strings.Join(it.Reasons, "; "))
				default:
					fmt.Fprintf(g.stdout, "up to date  %s\n", it.Label)
				}
			}
			fmt.Fprintf(g.stdout, "%d stale\n", stale)
			return nil
		},
	}
}

func newLogCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "log TARGET",
		Short: "Print the output of the last run of a target's action",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, e, err := g.inspect(cmd.Context())
			if err != nil {
				return err
			}
			l, err := label.Parse(args[0], w.pkg)
			if err != nil {
				return &exitError{code: exitConfig, err: err}
			}
			if _, err := e.Select([]label.Pattern{{Pkg: l.Pkg, Name: l.Name}}); err != nil {
				return &exitError{code: exitConfig, err: err}
			}
			b, err := e.LogOf(cmd.Context(), l)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(b)
			return err
		},
	}
}
