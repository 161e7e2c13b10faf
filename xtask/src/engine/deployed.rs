//! A template and the stack CloudFormation deployed from it: the stack's parameters and its
//! resources' physical ids, so that the template's intrinsics resolve as they did for the stack
//! (`template/resolve.rs`). The pipeline rehearsal reads the pipeline, build and release stacks
//! this way, and the access proof every policy.

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::aws::{Aws, AwsResultExt};
use crate::engine::stack::Stacks;
use crate::template::Template;
use crate::template::resolve::{Resolver, Scope};

/// A template and the stack it was deployed as.
pub struct Deployed {
    pub template: Value,
    pub scope: Scope,
}

impl Deployed {
    /// Reads stack `stack` in `account`/`region`, deployed from `template`: its parameters and its
    /// resources' physical ids. A stack that is missing or not complete is an error that says to
    /// deploy.
    pub async fn read(aws: &Aws, account: &str, region: &str, stack: &str, template: Value) -> Result<Deployed> {
        let client = aws.cloudformation(account, region).await?;
        let stacks = Stacks::new(client.clone(), std::time::Duration::from_secs(60));
        let state = match stacks.describe(stack).await? {
            Some(state) if state.is_complete() => state,
            Some(state) => bail!(
                "stack {stack} in {account}/{region} is {}; run `cargo xtask deploy --local` until it completes",
                state.status
            ),
            None => {
                bail!("stack {stack} is not deployed in {account}/{region}; run `cargo xtask deploy --local` first")
            }
        };
        let resources = client
            .describe_stack_resources()
            .stack_name(stack)
            .send()
            .await
            .aws(&client)
            .with_context(|| format!("listing the resources of stack {stack} in {account}/{region}"))?;
        let physical_ids = resources
            .stack_resources()
            .iter()
            .filter_map(|resource| {
                Some((resource.logical_resource_id()?.to_string(), resource.physical_resource_id()?.to_string()))
            })
            .collect();
        let mut parameters = state.parameters;
        for (name, value) in parameters.iter_mut() {
            if template["Parameters"][name.as_str()]["Type"] == "CommaDelimitedList"
                && let Some(items) = python_list(value)
            {
                *value = items.join(",");
            }
        }
        let scope = Scope {
            account: account.to_string(),
            region: region.to_string(),
            stack_name: stack.to_string(),
            parameters,
            physical_ids,
        };
        Ok(Deployed { template, scope })
    }

    /// [`Deployed::read`] with the template the stack was deployed from (`GetTemplate`): what is
    /// deployed, even where the file in the checkout has changed since.
    pub async fn read_as_deployed(aws: &Aws, account: &str, region: &str, stack: &str) -> Result<Deployed> {
        let client = aws.cloudformation(account, region).await?;
        let reply = client
            .get_template()
            .stack_name(stack)
            .send()
            .await
            .aws(&client)
            .with_context(|| format!("reading the template of stack {stack} in {account}/{region}"))?;
        let text = reply.template_body().unwrap_or_default();
        let template = Template::parse(std::path::Path::new(stack), text)
            .with_context(|| format!("parsing the deployed template of stack {stack}"))?;
        Deployed::read(aws, account, region, stack, template.body).await
    }

    pub fn resolver(&self) -> Resolver<'_> {
        Resolver::new(&self.template, &self.scope)
    }
}

/// moto's DescribeStacks returns a `CommaDelimitedList` parameter as Python's repr of the list
/// (`['a', 'b']`), where AWS returns it as it was given (`a,b`): the items of such a value.
pub fn python_list(value: &str) -> Option<Vec<String>> {
    let inner = value.strip_prefix('[')?.strip_suffix(']')?;
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(", ")
        .map(|item| item.strip_prefix('\'').and_then(|item| item.strip_suffix('\'')).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emulators_list_repr_reads_back_as_the_list() {
        assert_eq!(python_list("['arn:a', 'arn:b']"), Some(vec!["arn:a".to_string(), "arn:b".to_string()]));
        assert_eq!(python_list("[]"), Some(Vec::new()));
        assert_eq!(python_list("arn:a,arn:b"), None);
    }
}
