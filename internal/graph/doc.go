// Package graph is the float model: its JSON graph, its parameters, validation and shape
// inference.
//
// Load reads a model in the format of docs/model-format.md and returns it only when every node
// is valid: known op and attrs, the params its op needs and no others, inputs that name earlier
// tensors (so there are no cycles and no dangling inputs), unique names, and shapes that agree
// between each node, its inputs and its params. Parameter files are resolved inside the model's
// folder only.
//
// Invariants: a loaded Model's Nodes are in execution order; each node produces one tensor named
// after it; Shapes holds every tensor's shape with batch dimension 1. Passes that rewrite the
// graph (qtool fuse) call InferShapes again afterwards.
package graph
