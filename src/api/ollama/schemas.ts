import { Type, type Static } from '@sinclair/typebox';

/** Request bodies. Unknown fields are allowed (Ollama ignores them); known ones must have the right type. */
const KeepAlive = Type.Union([Type.String(), Type.Number()]);
const Options = Type.Object({}, { additionalProperties: true });
const Format = Type.Union([Type.String(), Type.Object({}, { additionalProperties: true })]);
const Think = Type.Union([Type.Boolean(), Type.String()]);
const open = { additionalProperties: true } as const;

export const GenerateBody = Type.Object(
  {
    model: Type.String(),
    prompt: Type.Optional(Type.String()),
    suffix: Type.Optional(Type.String()),
    system: Type.Optional(Type.String()),
    template: Type.Optional(Type.String()),
    context: Type.Optional(Type.Array(Type.Integer())),
    stream: Type.Optional(Type.Boolean()),
    raw: Type.Optional(Type.Boolean()),
    format: Type.Optional(Format),
    images: Type.Optional(Type.Array(Type.String())),
    options: Type.Optional(Options),
    keep_alive: Type.Optional(KeepAlive),
    think: Type.Optional(Think),
  },
  open,
);
export type GenerateBody = Static<typeof GenerateBody>;

const ToolCall = Type.Object(
  {
    function: Type.Object({ name: Type.String(), arguments: Type.Optional(Type.Unknown()) }, open),
  },
  open,
);

export const Message = Type.Object(
  {
    role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant'), Type.Literal('tool')]),
    content: Type.Optional(Type.String()),
    images: Type.Optional(Type.Array(Type.String())),
    tool_calls: Type.Optional(Type.Array(ToolCall)),
    tool_name: Type.Optional(Type.String()),
    thinking: Type.Optional(Type.String()),
  },
  open,
);
export type Message = Static<typeof Message>;

export const ChatBody = Type.Object(
  {
    model: Type.String(),
    messages: Type.Optional(Type.Array(Message)),
    tools: Type.Optional(Type.Array(Type.Object({}, open))),
    stream: Type.Optional(Type.Boolean()),
    format: Type.Optional(Format),
    options: Type.Optional(Options),
    keep_alive: Type.Optional(KeepAlive),
    think: Type.Optional(Think),
  },
  open,
);
export type ChatBody = Static<typeof ChatBody>;

export const ShowBody = Type.Object(
  {
    model: Type.Optional(Type.String()),
    name: Type.Optional(Type.String()),
    verbose: Type.Optional(Type.Boolean()),
  },
  open,
);
export type ShowBody = Static<typeof ShowBody>;
