package fold

import "github.com/qtool-dev/qtool/internal/graph"

// Action is the kind of change Fuse made to a node.
type Action string

// The actions a Report lists.
const (
	// ActionFolded is a batchnorm folded into the conv2d or linear before it.
	ActionFolded Action = "folded"
	// ActionFused is a relu, relu6 or clip merged into the conv2d, linear or add before it.
	ActionFused Action = "fused"
	// ActionDropped is an identity or dropout node removed from the graph.
	ActionDropped Action = "dropped"
	// ActionKept is a batchnorm or activation left in place. Change.Detail gives the reason.
	ActionKept Action = "kept"
)

// Report lists the changes Fuse made and the nodes it left in place.
type Report struct {
	NodesBefore int `json:"nodes_before"`
	NodesAfter  int `json:"nodes_after"`
	// Changes are in the order of the nodes in the input model.
	Changes []Change `json:"changes"`
	// CopiedParams are shared param keys copied before folding.
	CopiedParams []ParamCopy `json:"copied_params"`
	// Warnings are BatchNorm channels that folded but are suspect, such as a zero running_var.
	Warnings []Warning `json:"warnings"`
}

// Change is one folded, fused, dropped or kept node.
type Change struct {
	Action Action `json:"action"`
	// Node is the node's name in the input model.
	Node string   `json:"node"`
	Op   graph.Op `json:"op"`
	// Into is the input model's name of the tensor the node read: the layer it was folded or
	// fused into, or the tensor that replaced a dropped node. Empty for kept nodes.
	Into string `json:"into,omitempty"`
	// Result is the name, in the fused model, of the tensor that carries this node's values.
	Result string `json:"result"`
	// Detail is the reason a node was kept, or a note on a change (a created bias, a composed
	// activation, a renamed graph output). A reason names tensors as the fused model does.
	Detail string `json:"detail,omitempty"`

	carrier *graph.Node // the node whose final name is Result, or nil when Result is a graph input
}

// Count returns how many changes have action a.
func (r *Report) Count(a Action) int {
	n := 0
	for _, c := range r.Changes {
		if c.Action == a {
			n++
		}
	}
	return n
}

// ParamCopy is a shared param key copied under a new key for one node before folding.
type ParamCopy struct {
	// Node is the layer's name in the input model.
	Node string `json:"node"`
	Role string `json:"role"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Warning is a BatchNorm channel that folded without error but looks suspicious.
type Warning struct {
	// Node is the batchnorm's name in the input model.
	Node    string `json:"node"`
	Channel int    `json:"channel"`
	Message string `json:"message"`
}
