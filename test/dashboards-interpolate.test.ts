// The emulation of grafana-clickhouse-datasource's query expansion (dashboards/interpolate.ts) against the
// plugin's documented behaviour: frontend variables and $__conditionalAll, then backend $__ macros.
import { describe, expect, it } from 'vitest';
import { applyConditionalAll, expandMacros, interpolate, replaceVariables, type TimeRange, type Variables } from '../dashboards/interpolate.js';

// 2026-03-01T10:00:00.250Z .. 2026-03-01T11:30:00.750Z, interval 30 s
const R: TimeRange = { fromMs: Date.UTC(2026, 2, 1, 10, 0, 0, 250), toMs: Date.UTC(2026, 2, 1, 11, 30, 0, 750), intervalMs: 30_000 };
const FROM = Math.floor(R.fromMs / 1000), TO = Math.floor(R.toMs / 1000);

describe('backend macros', () => {
  it('expands time filters with second and millisecond precision', () => {
    expect(expandMacros('WHERE $__timeFilter(time)', R)).toBe(`WHERE time >= toDateTime(${FROM}) AND time <= toDateTime(${TO})`);
    expect(expandMacros('WHERE $__timeFilter_ms(t)', R)).toBe(`WHERE t >= fromUnixTimestamp64Milli(${R.fromMs}) AND t <= fromUnixTimestamp64Milli(${R.toMs})`);
    expect(expandMacros('$__fromTime, $__toTime, $__fromTime_ms', R)).toBe(`toDateTime(${FROM}), toDateTime(${TO}), fromUnixTimestamp64Milli(${R.fromMs})`);
    expect(expandMacros('$__dateFilter(d)', R)).toBe(`d >= toDate('2026-03-01') AND d <= toDate('2026-03-01')`);
    expect(expandMacros('$__timeFrom(c) AND $__timeTo(c)', R)).toBe(`c >= toDateTime(${FROM}) AND c <= toDateTime(${TO})`);
  });

  it('trims arguments, keeps nested parentheses and expands inner macros first', () => {
    expect(expandMacros('$__timeFilter( toDateTime(x, \'UTC\') )', R)).toBe(`toDateTime(x, 'UTC') >= toDateTime(${FROM}) AND toDateTime(x, 'UTC') <= toDateTime(${TO})`);
    expect(expandMacros('$__timeInterval($__fromTime)', R)).toBe(`toStartOfInterval(toDateTime(toDateTime(${FROM})), INTERVAL 30 second)`);
  });

  it('buckets by the query interval, at least one second', () => {
    expect(expandMacros('$__timeInterval(time) AS t, $__interval_s', R)).toBe('toStartOfInterval(toDateTime(time), INTERVAL 30 second) AS t, 30');
    expect(expandMacros('$__timeInterval_ms(time)', R)).toBe('toStartOfInterval(toDateTime64(time, 3), INTERVAL 30000 millisecond)');
    expect(expandMacros('$__interval_s', { ...R, intervalMs: 200 })).toBe('1');
  });

  it('leaves unknown macros and string literals alone, rejects wrong argument counts', () => {
    expect(expandMacros("SELECT '$__fromTime', $__nope(x)", R)).toBe("SELECT '$__fromTime', $__nope(x)");
    expect(expandMacros("SELECT 'it\\'s', $__toTime", R)).toBe(`SELECT 'it\\'s', toDateTime(${TO})`);
    expect(() => expandMacros('$__timeFilter(a, b)', R)).toThrow(/expected 1 argument/);
  });
});

describe('frontend variables', () => {
  const vars: Variables = {
    kernel: { multi: true, values: ["6.12.57+deb13-amd64", "7.2.0-rc3"], options: ['6.12.57+deb13-amd64', '7.2.0-rc3', '6.1.0'] },
    any: { multi: true, all: true, values: ['$__all'], options: ["a'b", 'c'] },
    host: { multi: false, values: ['gpu-a01'], options: ['gpu-a01'] },
  };

  it('formats ${var:singlequote} with escaping, All as every option', () => {
    expect(replaceVariables('IN (${kernel:singlequote})', vars, R)).toBe("IN ('6.12.57+deb13-amd64','7.2.0-rc3')");
    expect(replaceVariables('IN (${any:singlequote})', vars, R)).toBe("IN ('a\\'b','c')");
    expect(replaceVariables('= ${host:singlequote}', vars, R)).toBe("= 'gpu-a01'");
  });

  it('uses the plugin formatter for plain references: lists quoted, single values raw', () => {
    expect(replaceVariables('IN ($kernel)', vars, R)).toBe("IN ('6.12.57+deb13-amd64','7.2.0-rc3')");
    expect(replaceVariables('= $host', vars, R)).toBe('= gpu-a01');
    expect(replaceVariables('$__timeFilter(x) $unknown', vars, R)).toBe('$__timeFilter(x) $unknown');
  });

  it('$__conditionalAll drops the condition when All is selected', () => {
    expect(applyConditionalAll('WHERE $__conditionalAll(h IN (${any:singlequote}), $any) AND $__conditionalAll(k IN (${kernel:singlequote}), $kernel)', vars))
      .toBe('WHERE 1=1 AND k IN (${kernel:singlequote})');
    expect(interpolate('WHERE $__conditionalAll(k IN (${kernel:singlequote}), $kernel) AND $__timeFilter(time)', vars, R))
      .toBe(`WHERE k IN ('6.12.57+deb13-amd64','7.2.0-rc3') AND time >= toDateTime(${FROM}) AND time <= toDateTime(${TO})`);
  });
});
