package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

type client struct {
	endpoint, token, folderID string
}

type apiKey struct {
	ID                 string `json:"id"`
	FolderID           string `json:"folderId"`
	Name               string `json:"name"`
	Status             string `json:"status"`
	DefaultAlgorithm   string `json:"defaultAlgorithm"`
	DeletionProtection bool   `json:"deletionProtection"`
	CreatedAt          string `json:"createdAt"`
	PrimaryVersion     *struct {
		ID string `json:"id"`
	} `json:"primaryVersion"`
}

type notFound struct{ msg string }

func (e notFound) Error() string { return e.msg }

func (c *client) call(ctx context.Context, method, path string, body, out any) error {
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode == http.StatusNotFound {
		return notFound{string(data)}
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, res.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
