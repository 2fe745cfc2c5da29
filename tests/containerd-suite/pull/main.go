// containerd-pull: pull an image with containerd's own client code, the way a CRI pull does
// (Client.Pull with WithPullUnpack: the unpacker, whose Prepare carries the label
// containerd.io/snapshot.ref=CHAINID, so that a remote snapshotter holding the layer answers
// AlreadyExists and containerd neither downloads nor unpacks it). ctr 1.6's `image pull`
// fetches every layer and unpacks through rootfs.ApplyLayers instead, which sends no label.
//
//	containerd-pull --address SOCK [--namespace NS] [--snapshotter NAME] [--plain-http] REF
//
// Prints the image's name, its target digest and the chain id of its top layer.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/opencontainers/image-spec/identity"
)

func main() {
	address := flag.String("address", "/run/containerd/containerd.sock", "containerd's socket")
	ns := flag.String("namespace", "default", "containerd namespace")
	snapshotter := flag.String("snapshotter", "ovsnap", "the snapshotter to unpack into")
	plainHTTP := flag.Bool("plain-http", false, "talk to the registry over plain HTTP")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: containerd-pull --address SOCK [--namespace NS] [--snapshotter NAME] [--plain-http] REF")
		os.Exit(2)
	}
	if err := pull(*address, *ns, *snapshotter, *plainHTTP, flag.Arg(0)); err != nil {
		fmt.Fprintf(os.Stderr, "containerd-pull: %v\n", err)
		os.Exit(1)
	}
}

func pull(address, ns, snapshotter string, plainHTTP bool, ref string) error {
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
