// pause is the process that holds a pod's namespaces on the local cluster's real node
// (containerd's sandbox_image). Kubernetes' own pause is C in the kubernetes repository, not
// a Go module, and no registry serves its image here, so this is a small Go equivalent: it
// waits for SIGINT or SIGTERM, and reaps the zombies of a pod that shares its PID namespace.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
