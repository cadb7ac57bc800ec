package main

import (
	"fmt"
	"net"
)

// freePorts binds N listeners at once (so the ports differ), prints their
// ports and closes them. A port can in theory be taken again before the caller
// binds it; the scripts retry a failed start.
func freePorts(n int) error {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		listeners = append(listeners, l)
	}
	for _, l := range listeners {
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}
