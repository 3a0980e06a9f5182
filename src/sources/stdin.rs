//! Standard input, read to its end (or until shutdown).

use std::io;

use super::SourceCtx;
use super::framing::Fill;

pub async fn run(ctx: SourceCtx) -> io::Result<()> {
    let mut stdin = tokio::io::stdin();
    let mut framer = ctx.framer();
    let result = loop {
        let fill = tokio::select! {
            _ = ctx.shutdown.cancelled() => break Ok(()),
            fill = framer.fill(&mut stdin) => fill,
        };
        match fill {
            Ok(Fill::Lines(lines)) => {
                if !ctx.send(lines, &mut framer).await {
                    return Ok(());
                }
            }
            Ok(Fill::Partial) => {}
            Ok(Fill::Eof) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    ctx.finish(framer).await;
    result
}
