// Command terraform-provider-kmspeer is the bench's peer: a minimal provider on
// terraform-plugin-framework that manages kmsd keys with the same REST calls as the TypeScript
// provider (ConfigureProvider: GET /healthz and one list; create: POST /kms/v1/keys; read: GET;
// delete: DELETE), so `npm run bench` can put the two side by side on the same daemon.
package main

import (
	"context"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
)

func main() {
	err := providerserver.Serve(context.Background(), newProvider, providerserver.ServeOpts{
		Address:         "terraform.local/local/kmspeer",
		ProtocolVersion: 6,
	})
	if err != nil {
		log.Fatal(err)
	}
}
