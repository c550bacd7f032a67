package main

import (
	"context"
	"errors"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

type keyResource struct{ client *client }

type keyModel struct {
	ID               types.String `tfsdk:"id"`
	FolderID         types.String `tfsdk:"folder_id"`
	Name             types.String `tfsdk:"name"`
	Status           types.String `tfsdk:"status"`
	DefaultAlgorithm types.String `tfsdk:"default_algorithm"`
	CreatedAt        types.String `tfsdk:"created_at"`
	PrimaryVersionID types.String `tfsdk:"primary_version_id"`
}

func newKeyResource() resource.Resource { return &keyResource{} }

func (r *keyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_symmetric_key"
}

func (r *keyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		Attributes: map[string]schema.Attribute{
			"id":                 schema.StringAttribute{Computed: true, PlanModifiers: keep},
			"folder_id":          schema.StringAttribute{Optional: true, Computed: true, PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()}},
			"name":               schema.StringAttribute{Optional: true},
			"status":             schema.StringAttribute{Computed: true, PlanModifiers: keep},
			"default_algorithm":  schema.StringAttribute{Computed: true, PlanModifiers: keep},
			"created_at":         schema.StringAttribute{Computed: true, PlanModifiers: keep},
			"primary_version_id": schema.StringAttribute{Computed: true, PlanModifiers: keep},
		},
	}
}

func (r *keyResource) Configure(_ context.Context, req resource.ConfigureRequest, _ *resource.ConfigureResponse) {
	if c, ok := req.ProviderData.(*client); ok {
		r.client = c
	}
}

func toModel(k apiKey, m *keyModel) {
	m.ID = types.StringValue(k.ID)
	m.FolderID = types.StringValue(k.FolderID)
	if k.Name != "" || !m.Name.IsNull() {
		m.Name = types.StringValue(k.Name)
	}
	m.Status = types.StringValue(k.Status)
	m.DefaultAlgorithm = types.StringValue(k.DefaultAlgorithm)
	m.CreatedAt = types.StringValue(k.CreatedAt)
	if k.PrimaryVersion != nil {
		m.PrimaryVersionID = types.StringValue(k.PrimaryVersion.ID)
	} else {
		m.PrimaryVersionID = types.StringNull()
	}
}

func (r *keyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan keyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	folder := r.client.folderID
	if !plan.FolderID.IsUnknown() && !plan.FolderID.IsNull() {
		folder = plan.FolderID.ValueString()
	}
	body := map[string]any{"folderId": folder, "defaultAlgorithm": "AES_128", "deletionProtection": false}
	if !plan.Name.IsNull() {
		body["name"] = plan.Name.ValueString()
	}
	var op struct {
		Response apiKey `json:"response"`
	}
	if err := r.client.call(ctx, "POST", "/kms/v1/keys", body, &op); err != nil {
		resp.Diagnostics.AddError("Cannot create key", err.Error())
		return
	}
	toModel(op.Response, &plan)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *keyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state keyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var k apiKey
	if err := r.client.call(ctx, "GET", "/kms/v1/keys/"+state.ID.ValueString(), nil, &k); err != nil {
		var nf notFound
		if errors.As(err, &nf) {
			resp.State.RemoveResource(ctx)
			return
		}
		resp.Diagnostics.AddError("Cannot read key", err.Error())
		return
	}
	toModel(k, &state)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *keyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan keyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	body := map[string]any{"updateMask": "name", "name": plan.Name.ValueString()}
	var op struct {
		Response apiKey `json:"response"`
	}
	if err := r.client.call(ctx, "PATCH", "/kms/v1/keys/"+plan.ID.ValueString(), body, &op); err != nil {
		resp.Diagnostics.AddError("Cannot update key", err.Error())
		return
	}
	toModel(op.Response, &plan)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *keyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state keyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.client.call(ctx, "DELETE", "/kms/v1/keys/"+state.ID.ValueString(), nil, nil); err != nil {
		var nf notFound
		if !errors.As(err, &nf) {
			resp.Diagnostics.AddError("Cannot delete key", err.Error())
		}
	}
}

func (r *keyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
}
