package testutil

import (
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// OrdersAPI is the definition the validation benchmarks use: POST /orders validates its
// body against a typical order schema (nested objects, an array of items, patterns, enums,
// bounds), POST /orders-unchecked takes the same body unvalidated, and GET /orders/{id}
// enforces its responses (the same schema).
// Both need a token of the issuer named in issuer; audience is the token's audience.
func OrdersAPI(issuer string) string {
	return `openapi: 3.0.3
info: {title: Orders, version: v1}
servers: [{url: "http://127.0.0.1:8081/orders"}]
x-tollgate-validation: {request: true, maxBodySize: 1MiB}
security: [{oauth2: []}]
components:
  securitySchemes:
    oauth2: {type: oauth2, flows: {clientCredentials: {tokenUrl: "` + issuer + `/token", scopes: {}}}}
  schemas:
    Order:
      type: object
      required: [id, customer, items, currency]
      additionalProperties: false
      properties:
        id: {type: string, pattern: "^ord-[0-9]{8}$"}
        currency: {type: string, enum: [EUR, USD, GBP]}
        express: {type: boolean}
        notes: {type: string, maxLength: 2000, nullable: true}
        customer:
          type: object
          required: [name, email]
          properties:
            name: {type: string, minLength: 1, maxLength: 100}
            email: {type: string, pattern: "^[^@ ]+@[^@ ]+$"}
            address:
              type: object
              properties:
                street: {type: string}
                city: {type: string}
                postcode: {type: string, maxLength: 12}
        items:
          type: array
          minItems: 1
          maxItems: 5000
          items:
            type: object
            required: [sku, quantity, price]
            additionalProperties: false
            properties:
              sku: {type: string, pattern: "^[A-Z]{3}-[0-9]{4}$"}
              quantity: {type: integer, minimum: 1, maximum: 1000}
              price: {type: number, exclusiveMinimum: true, minimum: 0}
              gift: {type: boolean}
paths:
  /orders/{id}:
    get:
      x-tollgate-validation: {request: false, response: enforce}
      responses:
        "200": {description: the order, content: {application/json: {schema: {$ref: "#/components/schemas/Order"}}}}
        "404": {description: no such order}
  /orders:
    post:
      requestBody:
        required: true
        content: {application/json: {schema: {$ref: "#/components/schemas/Order"}}}
      responses: {"201": {description: placed}}
  /orders-unchecked:
    post:
      x-tollgate-validation: {request: false}
      requestBody:
        required: true
        content: {application/json: {schema: {$ref: "#/components/schemas/Order"}}}
      responses: {"201": {description: placed}}
`
}

// OrderResponse is what Envoy's ext_proc filter sends for a 200 response of GET
// /orders/{id} carrying an order of about size bytes: its headers, then its buffered body.
func OrderResponse(size int) []*extprocv3.ProcessingRequest {
	attrs, _ := structpb.NewStruct(map[string]any{"response.code_details": "via_upstream", "request.id": "5f3c1a52-bench"})
	return []*extprocv3.ProcessingRequest{
		{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":status", RawValue: []byte("200")}, {Key: "content-type", RawValue: []byte("application/json")},
			{Key: "content-length", RawValue: []byte(fmt.Sprint(len(OrderBody(size))))}, {Key: "date", RawValue: []byte("Sat, 05 Dec 2026 21:00:00 GMT")},
		}}}}, Attributes: map[string]*structpb.Struct{"envoy.filters.http.ext_proc": attrs}},
		{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: OrderBody(size), EndOfStream: true}}},
	}
}

// OrderBody is an order that OrdersAPI's schema accepts, of about size bytes (at least
// one item): the size of a typical request body is set by its number of items.
func OrderBody(size int) []byte {
	head := `{"id":"ord-20261205","currency":"EUR","express":false,"notes":"Leave the parcel with the neighbour if nobody is at home.",` +
		`"customer":{"name":"Ada Lovelace","email":"ada@example.com","address":{"street":"12 St James's Square","city":"London","postcode":"SW1Y 4JH"}},"items":[`
	var b strings.Builder
	b.WriteString(head)
	for i := 0; i == 0 || b.Len() < size-2; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"ABC-%04d","quantity":%d,"price":%d.%02d,"gift":%t}`, i%10000, 1+i%7, 3+i%40, i%100, i%5 == 0)
	}
	b.WriteString("]}")
	return []byte(b.String())
}
