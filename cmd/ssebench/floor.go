//go:build linux

package main

import (
	"io"
	"net"
	"time"
)

// floorFrameSize is about the size of one event frame.
const floorFrameSize = 350

// loopbackWriteCost times back-to-back writes of one frame's size to a
// loopback TCP connection drained by another goroutine: the kernel's share of
// every frame a server writes, which no user-space change removes.
func loopbackWriteCost() (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, floorFrameSize)
	const n = 100000
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := c.Write(buf); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / n, nil
}
