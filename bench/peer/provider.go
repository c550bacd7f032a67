package main

import (
	"context"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

type kmsProvider struct{}

type providerModel struct {
	Endpoint types.String `tfsdk:"endpoint"`
	Token    types.String `tfsdk:"token"`
	FolderID types.String `tfsdk:"folder_id"`
}

func newProvider() provider.Provider { return &kmsProvider{} }

func (p *kmsProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "kmspeer"
}

func (p *kmsProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Attributes: map[string]schema.Attribute{
			"endpoint":  schema.StringAttribute{Optional: true},
			"token":     schema.StringAttribute{Optional: true, Sensitive: true},
			"folder_id": schema.StringAttribute{Optional: true},
		},
	}
}

func pick(v types.String, env string) string {
	if !v.IsNull() && !v.IsUnknown() && v.ValueString() != "" {
		return v.ValueString()
	}
	return os.Getenv(env)
}

func (p *kmsProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c := &client{endpoint: pick(cfg.Endpoint, "KMS_ENDPOINT"), token: pick(cfg.Token, "KMS_TOKEN"), folderID: pick(cfg.FolderID, "KMS_FOLDER_ID")}
	// The same two probes the TypeScript provider makes: reachability, then the token.
	if err := c.call(ctx, "GET", "/healthz", nil, nil); err != nil {
		resp.Diagnostics.AddError("KMS daemon unreachable", err.Error())
		return
	}
	if err := c.call(ctx, "GET", "/kms/v1/keys?folderId="+c.folderID+"&pageSize=1", nil, nil); err != nil {
		resp.Diagnostics.AddError("KMS token refused", err.Error())
		return
	}
	resp.ResourceData = c
}

func (p *kmsProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{newKeyResource}
}

func (p *kmsProvider) DataSources(context.Context) []func() datasource.DataSource { return nil }
