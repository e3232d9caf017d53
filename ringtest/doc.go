// Package ringtest is the testing kit for applications built on Ringleader: what
// Commanded's AggregateCase is to a Commanded application.
//
// Given, When and Then test one aggregate through the real dispatcher (validation,
// middleware, event encoding) on an in-memory store:
//
//	ringtest.Given(t, shop.NewRouter(), shop.StockAdded{SKU: "S1", Quantity: 5}).
//		When(shop.ReserveStock{SKU: "S1", OrderID: "o1", Quantity: 2}).
//		Then(shop.StockReserved{SKU: "S1", OrderID: "o1", Quantity: 2})
//
// StartCluster starts an application as an N-node cluster inside the test process,
// with an embedded NATS server, gossip between the nodes and either one shared
// in-memory store or a fresh PostgreSQL schema, and sends it commands over NATS:
//
//	c := ringtest.StartCluster(t, shop.App(), ringtest.Options{Nodes: 3, Postgres: true})
//	reply, err := c.Send(ctx, shop.PlaceOrder{OrderID: "o1", Lines: lines})
//
// A Case belongs to one goroutine. A Cluster's methods are safe for concurrent use;
// everything it started is stopped when the test ends.
package ringtest
