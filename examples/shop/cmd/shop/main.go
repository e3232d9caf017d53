// Command shop runs a node of the shop example application: `shop run -h` lists its
// settings, the runtime's and the shop's own (--reservation-timeout).
package main

import (
	"example.com/shop"

	"github.com/ringleader-go/ringleader/node"
)

func main() { node.Main(shop.App()) }
