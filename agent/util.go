package agent

import (
	"fmt"
	"net"
	"strconv"
)

// splitHostPort splits "host:port" and checks the port is 1..65535.
func splitHostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", addr, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not 1..65535", addr, ps)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q: no host", addr)
	}
	return host, port, nil
}
