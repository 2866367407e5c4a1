package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// command is one subcommand's flag set. Every setting is an environment
// variable, and the flag of the same name (--redis-url for
// PAGESEND_REDIS_URL) overrides it.
type command struct {
	fs      *flag.FlagSet
	usage   string // "pagesend worker [flags]"
	summary string
	envs    map[string]string // flag name → variable
	envOnly []envDoc          // settings read only from the environment
	envErrs []string
	getenv  func(string) string
	args    []string // positional arguments, after parse
}

type envDoc struct{ name, meaning string }

func newCommand(name, usage, summary string, getenv func(string) string) *command {
	c := &command{fs: flag.NewFlagSet(name, flag.ContinueOnError), usage: usage, summary: summary, envs: map[string]string{}, getenv: getenv}
	c.fs.SetOutput(io.Discard) // errors are returned; help is printed by printHelp
	return c
}

// fromEnv applies the variable to an already defined flag.
func (c *command) fromEnv(name, env string) {
	c.envs[name] = env
	if v := c.getenv(env); v != "" {
		if err := c.fs.Set(name, v); err != nil {
			c.envErrs = append(c.envErrs, fmt.Sprintf("%s=%q: %v", env, v, err))
		}
	}
}

func (c *command) str(name, env, def, usage string) *string {
	p := c.fs.String(name, def, usage)
	c.fromEnv(name, env)
	return p
}

func (c *command) integer(name, env string, def int, usage string) *int {
	p := c.fs.Int(name, def, usage)
	c.fromEnv(name, env)
	return p
}

func (c *command) duration(name, env string, def time.Duration, usage string) *time.Duration {
	p := c.fs.Duration(name, def, usage)
	c.fromEnv(name, env)
	return p
}

func (c *command) boolean(name, env string, def bool, usage string) *bool {
	p := c.fs.Bool(name, def, usage)
	c.fromEnv(name, env)
	return p
}

// secretEnv documents a setting read only from the environment: secrets
// stay out of flags, which any user can read in the process list.
func (c *command) secretEnv(env, meaning string) string {
	c.envOnly = append(c.envOnly, envDoc{env, meaning})
	return c.getenv(env)
}

// errHelp is returned when --help was asked for; the help is printed.
var errHelp = flag.ErrHelp

// parse parses args, flags and positional arguments in any order ("pages
// pause 123 --for 1h"); a malformed environment variable is an error too.
func (c *command) parse(args []string, stdout io.Writer) error {
	for {
		if err := c.fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				c.printHelp(stdout)
				return errHelp
			}
			return fmt.Errorf("%w: %v (see pagesend %s --help)", errUsage, err, c.fs.Name())
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			c.args = append(c.args, rest[1:]...)
			break
		}
		c.args = append(c.args, rest[0])
		args = rest[1:]
	}
	if len(c.envErrs) > 0 {
		return fmt.Errorf("bad environment: %s", strings.Join(c.envErrs, "; "))
	}
	return nil
}

// printHelp lists the command's flags with their variables and defaults.
func (c *command) printHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", c.usage, c.summary)
	var names []string
	c.fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	if len(names) > 0 {
		fmt.Fprintf(w, "\nFlags (each also read from its environment variable; the flag wins):\n")
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, n := range names {
			f := c.fs.Lookup(n)
			env := c.envs[n]
			if env == "" {
				env = "-"
			}
			def := ""
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0s" {
				def = " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(tw, "  --%s\t%s\t%s%s\n", n, env, f.Usage, def)
		}
		tw.Flush()
	}
	if len(c.envOnly) > 0 {
		fmt.Fprintf(w, "\nEnvironment only (secrets are never flags):\n")
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, e := range c.envOnly {
			fmt.Fprintf(tw, "  %s\t%s\n", e.name, e.meaning)
		}
		tw.Flush()
	}
}

func defaultGetenv(k string) string { return os.Getenv(k) }
