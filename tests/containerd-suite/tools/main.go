// containerd-tools: the two helper programs of the containerd tests, one Go build (containerd's
// client and server packages are linked once). The program is chosen by the name it runs
// under, as busybox does; scripts/build-containerd-suite links the binary as both names:
//
//	containerd-refserver --root DIR --address SOCK [--debug]   refserver.go
//	containerd-pull --address SOCK [--namespace NS] [--snapshotter NAME] [--plain-http] REF   pull.go
//
// This file holds what they share: choosing the program, its flags, its exit statuses
// (0 done, 1 failed, 2 usage).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// A program: its flags are defined on fs by setup, which returns what runs after parsing.
type program struct {
	usage string // the arguments, for the usage line
	nargs int    // positional arguments it takes
	setup func(fs *flag.FlagSet) func(args []string) error
}

var programs = map[string]program{
	"containerd-refserver": refserver,
	"containerd-pull":      pull,
}

func main() {
	name := filepath.Base(os.Args[0])
	p, ok := programs[name]
	args := os.Args[1:]
	if !ok && len(args) > 0 {
		// containerd-tools PROGRAM ARGS...
		name = args[0]
		p, ok = programs[name]
		args = args[1:]
	}
	if !ok {
		names := make([]string, 0, len(programs))
		for n, q := range programs {
			names = append(names, n+" "+q.usage)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: run as one of (or containerd-tools NAME ...):\n  %s\n", strings.Join(names, "\n  "))
		os.Exit(2)
	}
	os.Exit(runProgram(name, p, args))
}

func runProgram(name string, p program, args []string) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	usage := func() {
		fmt.Fprintf(os.Stderr, "usage: %s %s\n", name, p.usage)
		fs.PrintDefaults()
	}
	fs.Usage = usage
	run := p.setup(fs)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() != p.nargs {
		usage()
		return 2
	}
	if err := run(fs.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
