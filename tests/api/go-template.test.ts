import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { renderGoTemplate, renderOllamaPrompt, requestTemplateError } from '../../src/api/ollama/go-template.js';

const render = (t: string, messages: object[], tools?: object[]) =>
  renderOllamaPrompt(t, { messages: messages as never, tools }, (why) => why);
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather <now>',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];

describe("Ollama's Go templates", () => {
  it('llama3.2 (the registry template): tools, $last, slice/len, tool calls and tool results', async () => {
    const t = (
      await readFile(new URL('../fixtures/ollama-templates/llama3.2.gotmpl', import.meta.url), 'utf8')
    ).replace(/\n$/, '');
    const head = '<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n\n';
    const toolNote =
      'When you receive a tool call response, use the output to format an answer to the orginal user question.\n\n' +
      'You are a helpful assistant with tool calling capabilities.<|eot_id|>';
    expect(render(t, [{ role: 'user', content: 'Hi' }], TOOLS)).toBe(
      `${head}${toolNote}<|start_header_id|>user<|end_header_id|>\n\n` +
        'Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n' +
        'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}. Do not use variables.\n\n' +
        // Printed as Go marshals it: struct order, and <, > escaped.
        '{"type":"function","function":{"name":"get_weather","description":"Weather \\u003cnow\\u003e","parameters":{"type":"object","required":["city"],"properties":{"city":{"type":"string"}}}}}\n\n' +
        'Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const conversation = [
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: '',
        tool_calls: [{ function: { name: 'get_weather', arguments: { unit: 'c', city: 'Paris' } } }],
      },
      { role: 'tool', content: '18C' },
    ];
    expect(render(t, conversation, TOOLS)).toBe(
      `${head}Be kind.${toolNote}<|start_header_id|>user<|end_header_id|>\n\nWeather in Paris?<|eot_id|>` +
        '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city":"Paris","unit":"c"}}<|eot_id|>' +
        '<|start_header_id|>ipython<|end_header_id|>\n\n18C<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('gemma: variables assigned in a range, continue, printf', () => {
    const gemma =
      '{{- $system := "" }}\n{{- range .Messages }}\n{{- if eq .Role "system" }}\n{{- if not $system }}{{ $system = .Content }}\n' +
      '{{- else }}{{ $system = printf "%s\\n\\n%s" $system .Content }}\n{{- end }}\n{{- continue }}\n' +
      '{{- else if eq .Role "user" }}<start_of_turn>user\n{{- if $system }}\n{{ $system }}\n{{- $system = "" }}\n{{- end }}\n' +
      '{{- else if eq .Role "assistant" }}<start_of_turn>model\n{{- end }}\n{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n';
    const msgs = [
      { role: 'system', content: 'A' },
      { role: 'user', content: 'u1' },
      { role: 'assistant', content: 'a1' },
      { role: 'user', content: 'u2' },
    ];
    expect(render(gemma, msgs)).toBe(
      '<start_of_turn>user\nA\nu1<end_of_turn>\n<start_of_turn>model\na1<end_of_turn>\n<start_of_turn>user\nu2<end_of_turn>\n<start_of_turn>model\n',
    );
  });

  it('mistral: range with $index, $_ and else-if chains', () => {
    const mistral =
      '[INST] {{ range $index, $_ := .Messages }}\n{{- if eq .Role "system" }}{{ .Content }}\n\n' +
      '{{ else if eq .Role "user" }}{{ .Content }}[/INST]\n{{- else if eq .Role "assistant" }} {{ .Content }}</s>[INST] {{ end }}\n{{- end }}';
    const msgs = [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'u1' },
      { role: 'assistant', content: 'a1' },
      { role: 'user', content: 'u2' },
    ];
    expect(render(mistral, msgs)).toBe('[INST] S\n\nu1[/INST] a1</s>[INST] u2[/INST]');
  });

  it('classic .System/.Prompt/.Response templates run per exchange and stop at the last .Response', () => {
    const classic =
      '{{ if .System }}<<SYS>>{{ .System }}<</SYS>>{{ end }}[INST] {{ .Prompt }} [/INST] {{ .Response }}</s>';
    const msgs = [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'u1' },
      { role: 'assistant', content: 'a1' },
      { role: 'user', content: 'u2' },
    ];
    expect(render(classic, msgs)).toBe('<<SYS>>S<</SYS>>[INST] u1 [/INST] a1</s>[INST] u2 [/INST] ');
    expect(renderGoTemplate('A:{{ .Prompt }}|{{ .Response }}tail', { System: '', Prompt: 'p', Response: '' })).toBe(
      'A:p|',
    );
  });

  it('with/else, comments, index, pipes, json, len; consecutive messages of one role merge', () => {
    const t =
      '{{/* note */}}{{ with .System }}[{{ . }}]{{ else }}none{{ end }}{{ range .Messages }}{{ index . "Role" | printf "%q" }}{{ end }}{{ json .Tools }}{{ len .Messages }}';
    expect(
      render(t, [
        { role: 'user', content: 'x' },
        { role: 'user', content: 'y' },
      ]),
    ).toBe('none"user"null1');
  });

  it('what it cannot render is an error that says what, never a wrong prompt', () => {
    for (const [t, why] of [
      ['{{ template "x" . }}', /\{\{ template \}\} is not supported/],
      ['{{ if .System }}open', /missing \{\{ end \}\}/],
      ['{{ end }}', /unexpected \{\{ end \}\}/],
      ['{{ call .Fn }}', /function "call" not defined/],
      ['{{ $undefined }}', /undefined variable/],
    ] as const) {
      expect(() => render(t, [{ role: 'user', content: 'x' }]), t).toThrow(why);
    }
    expect(() => renderOllamaPrompt('{{ end }}', { messages: [] }, requestTemplateError)).toThrow(
      /^invalid value for "template": /,
    );
  });
});
