/**
 * google.rpc.ErrorInfo, the rich error detail Iris attaches to every failed call.
 *
 * protobuf-es needs a message descriptor to decode a detail (ConnectError.findDetails). The contract does not
 * import google/rpc/error_details.proto, and no npm package ships it for protobuf-es v2, so rather than
 * vendoring that file this module describes the one message it needs, field for field as googleapis defines
 * it (reason = 1, domain = 2, map<string, string> metadata = 3). Only the type name and field numbers matter
 * on the wire.
 *
 * @module
 */
import { create, createFileRegistry, type Message } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

/** The fields of google.rpc.ErrorInfo. */
export type ErrorInfo = Message<"google.rpc.ErrorInfo"> & {
  /** The error's reason, e.g. "TeamNotFoundError". */
  reason: string;
  /** The error's domain ("iris.v1" for Iris). */
  domain: string;
  /** Facts about the error, e.g. { messageId: "msg_..." } for an Ask that timed out. */
  metadata: { [key: string]: string };
};

const { OPTIONAL: optional, REPEATED: repeated } = FieldDescriptorProto_Label;
const { STRING: string, MESSAGE: message } = FieldDescriptorProto_Type;

const file = create(FileDescriptorProtoSchema, {
  name: "iris_client/google_rpc_error_info.proto",
  package: "google.rpc",
  syntax: "proto3",
  messageType: [
    {
      name: "ErrorInfo",
      field: [
        { name: "reason", jsonName: "reason", number: 1, label: optional, type: string },
        { name: "domain", jsonName: "domain", number: 2, label: optional, type: string },
        {
          name: "metadata",
          jsonName: "metadata",
          number: 3,
          label: repeated,
          type: message,
          typeName: ".google.rpc.ErrorInfo.MetadataEntry",
        },
      ],
      nestedType: [
        {
          name: "MetadataEntry",
          field: [
            { name: "key", jsonName: "key", number: 1, label: optional, type: string },
            { name: "value", jsonName: "value", number: 2, label: optional, type: string },
          ],
          options: { mapEntry: true },
        },
      ],
    },
  ],
});

/** The descriptor of google.rpc.ErrorInfo, for ConnectError.findDetails. */
export const ErrorInfoSchema = createFileRegistry(file, () => undefined).getMessage(
  "google.rpc.ErrorInfo",
) as GenMessage<ErrorInfo>;
