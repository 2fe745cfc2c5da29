// containerd-pull: pull an image with containerd's own client code, the way a CRI pull does
// (Client.Pull with WithPullUnpack: the unpacker, whose Prepare carries the label
// containerd.io/snapshot.ref=CHAINID, so that a remote snapshotter holding the layer answers
// AlreadyExists and containerd neither downloads nor unpacks it). ctr 1.6's `image pull`
// fetches every layer and unpacks through rootfs.ApplyLayers instead, which sends no label.
// Prints the image's name, its target digest and the chain id of its top layer.
package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/opencontainers/image-spec/identity"
)

var pull = program{
	usage: "--address SOCK [--namespace NS] [--snapshotter NAME] [--plain-http] REF",
	nargs: 1,
	setup: func(fs *flag.FlagSet) func([]string) error {
		address := fs.String("address", "/run/containerd/containerd.sock", "containerd's socket")
		ns := fs.String("namespace", "default", "containerd namespace")
		snapshotter := fs.String("snapshotter", "ovsnap", "the snapshotter to unpack into")
		plainHTTP := fs.Bool("plain-http", false, "talk to the registry over plain HTTP")
		return func(args []string) error { return pullImage(*address, *ns, *snapshotter, *plainHTTP, args[0]) }
	},
}

func pullImage(address, ns, snapshotter string, plainHTTP bool, ref string) error {
	client, err := containerd.New(address)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", address, err)
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), ns)
	hosts := docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(func(string) (bool, error) {
		return plainHTTP, nil
	}))
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
	img, err := client.Pull(ctx, ref, containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(snapshotter), containerd.WithResolver(resolver))
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return fmt.Errorf("%s: layers: %w", ref, err)
	}
	fmt.Printf("%s %s %s\n", img.Name(), img.Target().Digest, identity.ChainID(diffIDs))
	return nil
}
