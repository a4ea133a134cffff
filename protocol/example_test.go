package protocol_test

import (
	"context"
	"errors"
	"fmt"

	"termagent/protocol"
)

// A server and a terminal on loopback: the server asks for the device
// info, the terminal uploads an access record.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The server listens and answers upload_access_info.
	ln, err := protocol.Listen(ctx, protocol.ListenConfig{Address: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	serverMux := protocol.NewMux()
	serverMux.HandleFunc(protocol.ModUploadAccessInfo, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
		fmt.Println("server: access by", req.AccessInfo.PersonID, "at", req.AccessInfo.Time)
		return nil, nil // code 0
	})
	serverPeer := make(chan *protocol.Peer, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			panic(err)
		}
		p := protocol.NewPeer(conn, protocol.PeerConfig{Handler: serverMux})
		serverPeer <- p
		p.Run(ctx)
	}()

	// The terminal dials and answers get_device_info.
	conn, err := protocol.Dial(ctx, protocol.DialConfig{Address: ln.Addr().String()})
	if err != nil {
		panic(err)
	}
	deviceMux := protocol.NewMux()
	deviceMux.HandleFunc(protocol.ModGetDeviceInfo, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
		resp := req.Reply(protocol.CodeOK, "")
		resp.DeviceInfo = &protocol.DeviceInfo{UUID: "31231412332", Address: "公司门口", SoftwareVersion: "V3.2.1"}
		return resp, nil
	})
	device := protocol.NewPeer(conn, protocol.PeerConfig{Handler: deviceMux})
	go device.Run(ctx)

	resp, err := (<-serverPeer).Call(ctx, protocol.NewRequest(protocol.ModGetDeviceInfo))
	if err != nil {
		panic(err)
	}
	fmt.Println("device info:", resp.DeviceInfo.UUID, resp.DeviceInfo.Address)

	req := protocol.NewRequest(protocol.ModUploadAccessInfo)
	req.AccessInfo = &protocol.AccessInfo{PersonID: "3413123123", Time: "20190823123435", OpenDoorType: 2, InOutType: 1}
	if _, err := device.Call(ctx, req); err != nil {
		panic(err)
	}
	fmt.Println("upload acknowledged")

	_, err = device.Call(ctx, protocol.NewRequest("reboot_everything"))
	var remote *protocol.RemoteError
	if errors.As(err, &remote) {
		fmt.Println("server answered", remote.Code, remote.Message)
	}
	// Output:
	// device info: 31231412332 公司门口
	// server: access by 3413123123 at 20190823123435
	// upload acknowledged
	// server answered -1 unsupported mod "reboot_everything"
}
