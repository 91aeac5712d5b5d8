package sender_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

func ExampleClient_Send() {
	// A stand-in for the push service; a real sender uses the Channel URI
	// the phone app handed over.
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("target:", r.Header.Get(sender.HeaderTarget), "class:", r.Header.Get(sender.HeaderClass))
		w.Header().Set(sender.HeaderNotificationStatus, sender.StatusReceived)
		w.Header().Set(sender.HeaderSubscriptionStatus, sender.SubscriptionActive)
		w.Header().Set(sender.HeaderDeviceConnectionStatus, sender.DeviceConnected)
	}))
	defer svc.Close()
	channelURI := svc.URL + "/push/AbCdEf"

	toast := &payload.Toast{Text1: "New message", Text2: "Lunch at 1?", Param: "/Chat.xaml?id=42"}
	req, err := sender.NewToast(channelURI, toast, sender.Immediate)
	if err != nil {
		fmt.Println("invalid toast:", err)
		return
	}
	req.MessageID = "2f0c7e4a-5b1d-4c3e-8f9a-0b1c2d3e4f50"

	var c sender.Client
	resp, err := c.Send(context.Background(), req)
	switch {
	case err != nil:
		fmt.Println("transport failure, retry with backoff:", err)
	case resp.Delivered():
		fmt.Println("accepted:", resp)
	case resp.ShouldStop():
		fmt.Println("subscription expired: delete the Channel URI")
	case resp.Retryable():
		fmt.Println("retry after", resp.RetryAfter(), "or back off:", resp)
	default:
		fmt.Println("refused:", resp)
	}
	// Output:
	// target: toast class: 2
	// accepted: 200 Received/Active/Connected
}
