// Package ringtest is the testing kit for applications built on Ringleader: what
// Commanded's AggregateCase is to a Commanded application.
//
// Given, When and Then test one aggregate through the real dispatcher (validation,
// middleware, lifespans, event encoding) on a fresh in-memory store. The given
// events are written to the stream of the aggregate the command addresses:
//
//	ringtest.Given(t, shop.NewRouter(), shop.StockAdded{SKU: "S1", Quantity: 5}).
//		When(shop.ReserveStock{SKU: "S1", OrderID: "o1", Quantity: 2}).
//		Then(shop.StockReserved{SKU: "S1", OrderID: "o1", Quantity: 2})
//	ringtest.Given(t, router, shop.StockAdded{SKU: "S1", Quantity: 1}).
//		When(shop.ReserveStock{SKU: "S1", OrderID: "o1", Quantity: 2}).
//		ThenRejected(shop.ErrOutOfStock)
//	ringtest.Given(t, router).When(shop.ReserveStock{}).ThenInvalid()
//
// StartCluster starts an application as an N-node cluster inside the test process,
// with an embedded NATS server, gossip between the nodes and either one shared
// in-memory store or a fresh PostgreSQL schema, and sends it commands over NATS:
//
//	c := ringtest.StartCluster(t, shop.App(), ringtest.Options{Nodes: 3, Postgres: true})
//	reply, err := c.Send(ctx, shop.PlaceOrder{OrderID: "o1", Lines: lines}, transport.WithCommandID("o1"))
//	// err: no answer came; reply.Code(): the command failed ("rejected", "invalid", ...)
//
// Concurrency: a Case belongs to the goroutine that built it, and its Then methods
// call t.Fatalf, so use them from the test's goroutine; separate cases may run in
// parallel tests. A Cluster's methods (Send, Stop, Nodes, ...) are safe for
// concurrent use, from any goroutine; everything StartCluster started is stopped
// when the test ends.
package ringtest
