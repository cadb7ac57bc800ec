// Command cphelper is the small glue the local control plane needs besides the
// upstream binaries:
//
//	cphelper ports N          print N free TCP ports on 127.0.0.1, one a line
//	cphelper certs DIR        write a CA, serving and client certificates and
//	                          the service-account key pair into DIR
//	cphelper agent FLAGS      run the node-local agent (per-pod kwok Exec objects
//	                          and work dirs, hostPath volume provisioner)
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "ports":
		n := 1
		if len(os.Args) > 2 {
			n, err = strconv.Atoi(os.Args[2])
			if err != nil || n < 1 {
				usage()
			}
		}
		err = freePorts(n)
	case "certs":
		if len(os.Args) != 3 {
			usage()
		}
		err = writeCerts(os.Args[2])
	case "agent":
		err = runAgent(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cphelper %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: cphelper ports N | certs DIR | agent --kubeconfig FILE --pods-dir DIR --volumes-dir DIR")
	os.Exit(2)
}
