// Command hashfile prints the BLAKE3 digest of files as cogumi's cache
// computes it (cache.DigestFile), in b3sum's format, for the benchmarks.
package main

import (
	"fmt"
	"os"

	"github.com/cogumi/cogumi/cache"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hashfile FILE...")
		os.Exit(2)
	}
	for _, p := range os.Args[1:] {
		d, _, err := cache.DigestFile(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s  %s\n", d, p)
	}
}
