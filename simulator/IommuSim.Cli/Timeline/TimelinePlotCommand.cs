using System.CommandLine;
using IommuSim.Cli.Commands;

namespace IommuSim.Cli.Timeline;

/// <summary><c>iommusim timeline-plot TRACE.json OUT.png [--request ID]</c>: one request of a timeline as a PNG.</summary>
internal static class TimelinePlotCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var trace = new Argument<string>("TRACE") { Description = "A timeline written by run --timeline" };
        var png = new Argument<string>("PNG") { Description = "The picture to write" };
        var request = new Option<long?>("--request") { Description = "Request id (args.id of its slice; default: the one with the most walk reads)" };
        var cmd = new Command("timeline-plot", "Draw one request of a timeline (docs/timeline.md)") { trace, png, request };
        cmd.SetAction(pr => CliApp.Guard(stderr, () =>
        {
            stdout.WriteLine(TimelinePicture.Render(pr.GetValue(trace)!, pr.GetValue(png)!, pr.GetValue(request)));
            return CliApp.Ok;
        }));
        return cmd;
    }
}
