{#- The relation of source(source_name, table_name) when that source is defined in the project,
    else none. Lets a model read an optional source (one another folder may not define yet)
    without failing to compile. Only resolves at execution time (graph is empty while
    parsing), so the dependency is not in the manifest: prefer plain source() once the
    source is known to exist. -#}
{% macro source_if_defined(source_name, table_name) -%}
  {%- if execute -%}
    {%- for node in graph.sources.values() -%}
      {%- if node.source_name == source_name and node.name == table_name -%}
        {{- return(source(source_name, table_name)) -}}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {{- return(none) -}}
{%- endmacro %}
